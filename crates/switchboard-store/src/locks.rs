//! Advisory locks that serialize decisions across workers.
//!
//! Every decision about a message is taken while holding transaction-scoped
//! advisory locks on: its identity (channel, endpoint, external id), so R0 is
//! exact; its pair (channel, endpoint, contact), so I1 holds; and, for email,
//! its Message-ID, so all copies of one email are linked by one writer at a
//! time (I5); and the message key of every id it references (R1r), so a
//! message and the replies that name it are decided one after the other,
//! never in two transactions that cannot see each other. A batch takes all its locks at the start, in ascending key
//! order, so two batches can never wait on each other's advisory locks in a
//! cycle.

use crate::domain::{Channel, ExternalId, InboundMessage};
use crate::placement::batch::MessageKey;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};

/// The sorted, deduplicated advisory-lock keys for a batch. References in
/// `stored` are not locked: their message is committed, its own R1r
/// decision is over, so nothing about it can race with this batch (and a
/// long `References` header does not fill the lock table).
pub(super) fn keys_for<'a>(
    messages: impl Iterator<Item = &'a InboundMessage>,
    stored: &std::collections::HashSet<MessageKey>,
) -> Vec<i64> {
    let mut keys = Vec::new();
    for m in messages {
        let channel = m.channel.as_str();
        keys.push(key(&["message", channel, m.endpoint.as_str(), m.external_id.as_str()]));
        // R1r: the parent's own key, which the parent's batch holds.
        for parent in m.reference_candidates() {
            if !stored.contains(&MessageKey::named_by(m, parent)) {
                keys.push(key(&["message", channel, m.endpoint.as_str(), parent.as_str()]));
            }
        }
        keys.push(pair_key(channel, m.endpoint.as_str(), m.contact.as_str()));
        if m.channel == Channel::Email {
            keys.push(key(&["email-copies", m.external_id.as_str()]));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The most advisory locks placing `m` can take: its identity, its pair,
/// its Message-ID's copies (email), and one per reference it names that is
/// not stored yet ([`keys_for`]), counted as if none were. The decoder
/// bounds the references (the newest 100, the first 10 `In-Reply-To` ids).
pub fn locks_needed(m: &InboundMessage) -> u64 {
    let mut named: Vec<&ExternalId> = m.reference_candidates().collect();
    named.sort_unstable();
    named.dedup();
    3 + named.len() as u64
}

/// The key of a pair, also computed in SQL by `switchboard_pair_key` (the
/// agent's add-channel trigger takes the same lock).
pub(super) fn pair_key(channel: &str, endpoint: &str, contact: &str) -> i64 {
    key(&["pair", channel, endpoint, contact])
}

/// The key of a `related` link, taken before a link is inserted or a stale
/// sibling link deleted, so that deciding "no Message-ID needs it any more"
/// cannot race with a batch that needs it again. One key for both
/// directions: A to B and B to A are the same link (I5).
pub(super) fn link_key(from: uuid::Uuid, to: uuid::Uuid) -> i64 {
    let (low, high) = if from <= to { (from, to) } else { (to, from) };
    key(&["related-link", &low.to_string(), &high.to_string()])
}

/// A 64-bit key from the SHA-256 of the parts. Collisions only make two
/// unrelated decisions wait for each other, never wrong.
fn key(parts: &[&str]) -> i64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Takes the batch's locks in the given order. The batch's clock is read
/// after them, by the snapshot statement (`clock_timestamp()`, not `now()`,
/// the transaction's start, before the waits): a batch that waited for
/// another one's locks then reads a time later than that batch's commit, so
/// `created_at` order follows the order in which conversations of one pair
/// or one Message-ID became visible. The clock is the database's, the one
/// the agent desktop's `closed_at = now()` uses too.
pub(super) async fn acquire(tx: &mut Transaction<'_, Postgres>, keys: &[i64]) -> Result<(), sqlx::Error> {
    acquire_only(tx, keys).await
}

/// Takes the locks in the given order.
pub(super) async fn acquire_only(tx: &mut Transaction<'_, Postgres>, keys: &[i64]) -> Result<(), sqlx::Error> {
    // `unnest` yields the array in order and the set-returning call runs row by
    // row, so the locks are taken in the order of `keys`.
    sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, n) ORDER BY n")
        .bind(keys)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct_per_kind() {
        assert_eq!(key(&["pair", "sms", "1", "2"]), key(&["pair", "sms", "1", "2"]));
        assert_ne!(key(&["pair", "sms", "1", "2"]), key(&["message", "sms", "1", "2"]));
        // The separator keeps ("ab","c") apart from ("a","bc").
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
    }
}
