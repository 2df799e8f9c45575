//! Fetches the [`Snapshot`] a batch is planned against: a few set-based
//! queries, run after the batch's advisory locks are held. Conversations on
//! the merge chains the batch can reach are locked `FOR NO KEY UPDATE`, so an
//! agent's close or merge of one of them either committed before (and is
//! seen here) or waits for the batch to commit.

use crate::domain::{Channel, InboundMessage};
use crate::placement::batch::{ConversationRow, Holder, Snapshot};
use crate::placement::{Conversation, Customer, Status};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};
use std::collections::{BTreeSet, HashSet};
use uuid::Uuid;

/// How many times the merge chains are extended when agents merge while
/// they are being locked; each round locks what the previous one found.
const MAX_CHAIN_ROUNDS: usize = 16;

pub(super) async fn fetch(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
    now: DateTime<Utc>,
) -> Result<Snapshot, sqlx::Error> {
    let mut snapshot = Snapshot { now, ..Snapshot::default() };
    stored_messages(tx, messages, &mut snapshot).await?;
    pair_bindings(tx, messages, &mut snapshot).await?;
    replies(tx, messages, &mut snapshot).await?;
    let mut starts: Vec<Uuid> = snapshot
        .messages
        .values()
        .chain(snapshot.pairs.values().flatten())
        .chain(snapshot.replies.values().flatten())
        .copied()
        .collect();
    starts.sort_unstable();
    starts.dedup();
    lock_chains(tx, starts, &mut snapshot).await?;
    customers(tx, messages, &mut snapshot).await?;
    email_holders(tx, messages, &mut snapshot).await?;
    Ok(snapshot)
}

/// The batch's own keys (for R0) and every reference candidate (R1, R2).
async fn stored_messages(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
    snapshot: &mut Snapshot,
) -> Result<(), sqlx::Error> {
    let mut keys: HashSet<(Channel, &str, &str)> = HashSet::new();
    for m in messages {
        keys.insert((m.channel, m.endpoint.as_str(), m.external_id.as_str()));
        for r in m.reference_candidates() {
            keys.insert((m.channel, m.endpoint.as_str(), r));
        }
    }
    let (channels, endpoints, ids) = columns(keys.into_iter());
    let rows = sqlx::query(
        "SELECT m.channel, m.endpoint, m.external_id, m.conversation_id
         FROM unnest($1::text[], $2::text[], $3::text[]) AS k(channel, endpoint, external_id)
         JOIN messages m ON m.channel = k.channel AND m.endpoint = k.endpoint AND m.external_id = k.external_id",
    )
    .bind(&channels)
    .bind(&endpoints)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        if let Some(channel) = Channel::parse(row.get("channel")) {
            snapshot
                .messages
                .insert((channel, row.get("endpoint"), row.get("external_id")), row.get("conversation_id"));
        }
    }
    Ok(())
}

/// Conversations bound to the batch's pairs, through `conversation_channels`
/// or as the pair they were started for (so I1's index and this lookup can
/// never disagree).
async fn pair_bindings(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
    snapshot: &mut Snapshot,
) -> Result<(), sqlx::Error> {
    let pairs: HashSet<(Channel, &str, &str)> =
        messages.iter().map(|m| (m.channel, m.endpoint.as_str(), m.contact.as_str())).collect();
    let (channels, endpoints, contacts) = columns(pairs.into_iter());
    let rows = sqlx::query(
        "WITH k AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS k(channel, endpoint, contact))
         SELECT cc.channel, cc.endpoint, cc.contact, cc.conversation_id FROM k
           JOIN conversation_channels cc ON cc.channel = k.channel AND cc.endpoint = k.endpoint AND cc.contact = k.contact
         UNION
         SELECT c.origin_channel, c.origin_endpoint, c.origin_contact, c.id FROM k
           JOIN conversations c ON c.origin_channel = k.channel AND c.origin_endpoint = k.endpoint AND c.origin_contact = k.contact",
    )
    .bind(&channels)
    .bind(&endpoints)
    .bind(&contacts)
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        if let Some(channel) = Channel::parse(row.get(0)) {
            snapshot.pairs.entry((channel, row.get(1), row.get(2))).or_default().push(row.get(3));
        }
    }
    Ok(())
}

/// The batch's reference candidates that are already stored, read before
/// the locks so that only the others need one (see [`super::locks::keys_for`]).
/// A stored message is never removed, so the answer cannot go stale.
pub(super) async fn stored_references(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
) -> Result<HashSet<super::locks::StoredRef>, sqlx::Error> {
    let mut keys: HashSet<(Channel, &str, &str)> = HashSet::new();
    for m in messages {
        for r in m.reference_candidates() {
            keys.insert((m.channel, m.endpoint.as_str(), r));
        }
    }
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let (channels, endpoints, ids) = columns(keys.into_iter());
    let rows = sqlx::query(
        "SELECT m.channel, m.endpoint, m.external_id
         FROM unnest($1::text[], $2::text[], $3::text[]) AS k(channel, endpoint, external_id)
         JOIN messages m ON m.channel = k.channel AND m.endpoint = k.endpoint AND m.external_id = k.external_id",
    )
    .bind(&channels)
    .bind(&endpoints)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().filter_map(|row| Some((Channel::parse(row.get(0))?, row.get(1), row.get(2)))).collect())
}

/// R1r: stored messages at the batch's endpoints whose `in_reply_to` or
/// `references` name one of the batch's own ids, earliest stored first.
/// Each id is locked by this batch (its message key), and every message
/// naming it takes that lock too, so no such reply can commit unseen while
/// the batch runs.
async fn replies(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
    snapshot: &mut Snapshot,
) -> Result<(), sqlx::Error> {
    let keys: HashSet<(Channel, &str, &str)> =
        messages.iter().map(|m| (m.channel, m.endpoint.as_str(), m.external_id.as_str())).collect();
    let (channels, endpoints, ids) = columns(keys.into_iter());
    // Two probes, so each uses its index (a btree on in_reply_to, a GIN on
    // references); UNION drops a message found by both.
    let rows = sqlx::query(
        "SELECT k.channel, k.endpoint, k.external_id, r.conversation_id
         FROM unnest($1::text[], $2::text[], $3::text[]) AS k(channel, endpoint, external_id)
         CROSS JOIN LATERAL (
             SELECT m.id, m.conversation_id, m.stored_at FROM messages m
             WHERE m.channel = k.channel AND m.endpoint = k.endpoint AND m.in_reply_to = k.external_id
           UNION
             SELECT m.id, m.conversation_id, m.stored_at FROM messages m
             WHERE m.\"references\" @> ARRAY[k.external_id] AND m.channel = k.channel AND m.endpoint = k.endpoint
         ) r
         ORDER BY r.stored_at, r.id",
    )
    .bind(&channels)
    .bind(&endpoints)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        if let Some(channel) = Channel::parse(row.get("channel")) {
            let key = (channel, row.get("endpoint"), row.get("external_id"));
            snapshot.replies.entry(key).or_default().push(row.get("conversation_id"));
        }
    }
    Ok(())
}

/// Loads and locks every conversation on the merge chains from `starts`,
/// extending the chains while agents merge under our feet.
async fn lock_chains(
    tx: &mut Transaction<'_, Postgres>,
    starts: Vec<Uuid>,
    snapshot: &mut Snapshot,
) -> Result<(), sqlx::Error> {
    let mut pending = starts;
    for _ in 0..MAX_CHAIN_ROUNDS {
        if pending.is_empty() {
            break;
        }
        // Ids are locked in ascending order, the same in every batch.
        let rows = sqlx::query(
            "WITH RECURSIVE chain (id, hops) AS (
                 SELECT id, 0 FROM conversations WHERE id = ANY($1)
               UNION
                 SELECT c.merged_into, chain.hops + 1 FROM chain JOIN conversations c ON c.id = chain.id
                 WHERE c.merged_into IS NOT NULL AND chain.hops < 64
             )
             SELECT id, status, created_at, closed_at, merged_into FROM conversations
             WHERE id IN (SELECT id FROM chain) ORDER BY id FOR NO KEY UPDATE",
        )
        .bind(&pending)
        .fetch_all(&mut **tx)
        .await?;
        for row in rows {
            // The CHECK constraint admits only the five statuses.
            let status = Status::parse(row.get("status")).unwrap_or(Status::Open);
            let conversation = Conversation {
                id: row.get("id"),
                status,
                created_at: row.get("created_at"),
                closed_at: row.get("closed_at"),
            };
            snapshot
                .conversations
                .insert(conversation.id, ConversationRow { conversation, merged_into: row.get("merged_into") });
        }
        // A merge committed between reading a chain and locking its end
        // shows as a locked row pointing at a conversation not loaded yet.
        let missing: BTreeSet<Uuid> = snapshot
            .conversations
            .values()
            .filter_map(|r| r.merged_into)
            .filter(|id| !snapshot.conversations.contains_key(id))
            .collect();
        pending = missing.into_iter().collect();
    }
    Ok(())
}

async fn customers(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
    snapshot: &mut Snapshot,
) -> Result<(), sqlx::Error> {
    let contacts: HashSet<(Channel, &str)> = messages.iter().map(|m| (m.channel, m.contact.as_str())).collect();
    let (channels, addresses): (Vec<&str>, Vec<&str>) = contacts.into_iter().map(|(c, a)| (c.as_str(), a)).unzip();
    // The lowest person id wins when several claim one address: stable across replays.
    let rows = sqlx::query(
        "SELECT DISTINCT ON (pc.channel, pc.address) pc.channel, pc.address, p.id, p.name
         FROM unnest($1::text[], $2::text[]) AS k(channel, address)
         JOIN person_contacts pc ON pc.channel = k.channel AND pc.address = k.address
         JOIN people p ON p.id = pc.person_id
         ORDER BY pc.channel, pc.address, p.id",
    )
    .bind(&channels)
    .bind(&addresses)
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        if let Some(channel) = Channel::parse(row.get("channel")) {
            snapshot
                .customers
                .insert((channel, row.get("address")), Customer { id: row.get("id"), name: row.get("name") });
        }
    }
    Ok(())
}

/// R7: conversations already holding inbound copies of the batch's emails,
/// and the `related` links among them. Holders are not locked: R7 needs only
/// their creation time, which never changes, and the Message-ID lock keeps
/// other copies from being stored meanwhile.
async fn email_holders(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
    snapshot: &mut Snapshot,
) -> Result<(), sqlx::Error> {
    let ids: BTreeSet<&str> =
        messages.iter().filter(|m| m.channel == Channel::Email).map(|m| m.external_id.as_str()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = ids.into_iter().collect();
    let rows = sqlx::query(
        "SELECT DISTINCT m.external_id, c.id, c.created_at, c.status FROM messages m
         JOIN conversations c ON c.id = m.conversation_id
         WHERE m.channel = 'email' AND m.direction = 'inbound' AND m.external_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut conversations = Vec::new();
    for row in rows {
        let holder = Holder {
            conversation_id: row.get("id"),
            created_at: row.get("created_at"),
            status: Status::parse(row.get("status")).unwrap_or(Status::Open),
        };
        conversations.push(holder.conversation_id);
        snapshot.holders.entry(row.get("external_id")).or_default().push(holder);
    }
    if conversations.is_empty() {
        return Ok(());
    }
    let links = sqlx::query(
        "SELECT conversation_id, related_conversation_id FROM conversation_links
         WHERE kind = 'related' AND conversation_id = ANY($1) AND related_conversation_id = ANY($1)",
    )
    .bind(&conversations)
    .fetch_all(&mut **tx)
    .await?;
    snapshot.related_links = links.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(())
}

/// Splits (channel, a, b) triples into three parallel columns for `unnest`.
fn columns<'a>(
    keys: impl Iterator<Item = (Channel, &'a str, &'a str)>,
) -> (Vec<&'static str>, Vec<&'a str>, Vec<&'a str>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for (c, a, b) in keys {
        out.0.push(c.as_str());
        out.1.push(a);
        out.2.push(b);
    }
    out
}
