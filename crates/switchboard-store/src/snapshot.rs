//! Fetches the [`Snapshot`] a batch is planned against, after the batch's
//! advisory locks are held: one statement ([`SNAPSHOT_SQL`]) reads every
//! fact the batch can need, so the snapshot costs one round trip whatever
//! the batch's size. Conversations on the merge chains the batch can reach
//! are locked `FOR NO KEY UPDATE` in that statement, so an agent's close or
//! merge of one of them either committed before (and is seen here) or waits
//! for the batch to commit.

use super::snapshot_sql::{PARTICIPATION_SQL, SNAPSHOT_SQL, STANDING_SQL, THREADS_SQL};
use crate::domain::{domain_of, Channel, ExternalId, InboundMessage};
use crate::placement::batch::{replies_within, ConversationRow, Holder, MessageKey, PairKey, Snapshot};
use crate::placement::late_parent::{self, MessageFacts, Shape, ThreadMessage};
use crate::placement::{Conversation, Customer, Policy, SenderPolicy};
use crate::rows::{self, SnapshotRow, StandingRow, StoredKey, ThreadRow};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// How many times the merge chains are extended when agents merge while
/// they are being locked; each round locks what the previous one found.
const MAX_CHAIN_ROUNDS: usize = 16;

/// Reads the snapshot. Its `now` is the database clock read after the
/// locks (see [`super::locks::acquire`] for why after).
pub(super) async fn fetch(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
) -> Result<Snapshot, sqlx::Error> {
    // The batch's own keys (R0) and every reference candidate (R1, R2).
    let mut keys: HashSet<(Channel, &str, &str)> = HashSet::new();
    for m in messages {
        keys.insert((m.channel, m.endpoint.as_str(), m.external_id.as_str()));
        for r in m.reference_candidates() {
            keys.insert((m.channel, m.endpoint.as_str(), r.as_str()));
        }
    }
    let stored = columns(keys.into_iter());
    let pairs: HashSet<(Channel, &str, &str)> =
        messages.iter().map(|m| (m.channel, m.endpoint.as_str(), m.contact.as_str())).collect();
    let pairs = columns(pairs.into_iter());
    // R1r: the batch's own ids, which stored replies may name.
    let own: HashSet<(Channel, &str, &str)> =
        messages.iter().map(|m| (m.channel, m.endpoint.as_str(), m.external_id.as_str())).collect();
    let own = columns(own.into_iter());
    let contacts: HashSet<(Channel, &str)> = messages.iter().map(|m| (m.channel, m.contact.as_str())).collect();
    let (c_channels, c_addresses): (Vec<&str>, Vec<&str>) = contacts.into_iter().map(|(c, a)| (c.as_str(), a)).unzip();
    let emails: BTreeSet<&str> =
        messages.iter().filter(|m| m.channel == Channel::Email).map(|m| m.external_id.as_str()).collect();
    let emails: Vec<&str> = emails.into_iter().collect();
    let rows: Vec<SnapshotRow> = sqlx::query_as(SNAPSHOT_SQL)
        .bind(&stored.0)
        .bind(&stored.1)
        .bind(&stored.2)
        .bind(&pairs.0)
        .bind(&pairs.1)
        .bind(&pairs.2)
        .bind(&own.0)
        .bind(&own.1)
        .bind(&own.2)
        .bind(&c_channels)
        .bind(&c_addresses)
        .bind(&emails)
        .fetch_all(&mut **tx)
        .await?;
    let mut snapshot = Snapshot::default();
    // Rows come ordered by `ord`: replies earliest stored first, as R1r needs.
    for row in rows {
        add_row(row, &mut snapshot);
    }
    let missing = missing_chain_ends(&snapshot);
    lock_chains(tx, missing, &mut snapshot).await?;
    Ok(snapshot)
}

/// R8's facts: the shapes of the conversations that may hold replies to
/// the batch's messages: those holding stored replies, and when the batch
/// holds replies to its own messages, every conversation of the snapshot
/// (one of those may land there before its parent is placed). Most batches
/// have neither and cost nothing here. The conversations are locked by the
/// snapshot, so their shapes hold until the batch commits.
pub(super) async fn threads(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
    policy: &Policy,
    snapshot: &mut Snapshot,
) -> Result<(), sqlx::Error> {
    // No window: R8 only links, and links need no shapes.
    let Some(window) = policy.late_parent_window else { return Ok(()) };
    let mut asked: BTreeSet<Uuid> = BTreeSet::new();
    // The replies' conversations and the ends of their merge chains, for
    // the messages that will be placed: a duplicate (R0, all of a replay)
    // is placed nowhere and has no R8 to apply.
    let placed = |key: &MessageKey| !snapshot.messages.contains_key(key);
    for id in snapshot.replies.iter().filter(|(k, _)| placed(k)).flat_map(|(_, ids)| ids) {
        asked.extend(snapshot.chain(*id));
    }
    let new: Vec<&InboundMessage> = messages.iter().filter(|m| placed(&MessageKey::of(m))).copied().collect();
    if replies_within(&new) {
        asked.extend(snapshot.conversations.keys().copied());
    }
    if asked.is_empty() {
        return Ok(());
    }
    let asked: Vec<Uuid> = asked.into_iter().collect();
    // The snapshot holds them `FOR NO KEY UPDATE`, which lets an agent's
    // outbound message or merge into one of them (a foreign key's `KEY
    // SHARE`) through. `FOR UPDATE` waits for those, and the statement after
    // it sees what they committed.
    sqlx::query("SELECT 1 FROM conversations WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&asked)
        .execute(&mut **tx)
        .await?;
    let standings: Vec<StandingRow> = sqlx::query_as(STANDING_SQL).bind(&asked).fetch_all(&mut **tx).await?;
    let created: HashMap<Uuid, DateTime<Utc>> = standings
        .iter()
        .filter(|s| s.standing.may_be_untouched(snapshot.now, window))
        .map(|s| (s.conv, s.standing.created_at))
        .collect();
    if created.is_empty() {
        return Ok(());
    }
    let candidates: Vec<Uuid> = created.keys().copied().collect();
    let rows: Vec<ThreadRow> = sqlx::query_as(THREADS_SQL)
        .bind(&candidates)
        .bind(late_parent::MAX_MESSAGES as i64)
        .fetch_all(&mut **tx)
        .await?;
    let mut facts: HashMap<Uuid, Vec<MessageFacts>> = HashMap::new();
    for row in rows {
        // Only the agent desktop writes an id no decoder would: such a
        // message is an agent's (outbound), and the conversation touched.
        let Some(id) = row.external_id else {
            facts.entry(row.conv).or_default().push(MessageFacts { inbound: false, ..row.facts });
            continue;
        };
        let shape = snapshot.threads.entry(row.conv).or_insert_with(|| Shape {
            untouched: true,
            created_at: created[&row.conv],
            messages: Vec::new(),
        });
        shape.messages.push(ThreadMessage { id, names: row.names, sender: row.contact, named_in: row.named_in });
        facts.entry(row.conv).or_default().push(row.facts);
    }
    // Only untouched conversations have a shape: one the core finds
    // touched is as one never read (R8 links it, it is no thread's own).
    for (conv, facts) in facts {
        if !late_parent::untouched(&facts) {
            snapshot.threads.remove(&conv);
        }
    }
    Ok(())
}

/// The sender policy's facts: for each email of the batch whose endpoint's
/// policy is not `any`, and each conversation a reference of it can lead
/// to, whether the sender, or the sender's domain, took part in that
/// conversation or in one merged into it: a contact of its pairs, or the
/// contact, a `To` or a `Cc` (`details`) of one of its messages, outbound
/// included. Those conversations are locked by the snapshot, so no message
/// joins them before the batch commits.
///
/// A reference leads to the conversations on the merge chain of the stored
/// message it names; a reference to a message of this very batch may lead
/// to any conversation the batch can place into, so for such a sender every
/// conversation of the snapshot is asked about. The answers then do not
/// depend on where the batches were cut.
pub(super) async fn participation(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
    policy: &Policy,
    snapshot: &mut Snapshot,
) -> Result<(), sqlx::Error> {
    let own: HashSet<&ExternalId> = messages.iter().map(|m| &m.external_id).collect();
    let thread_senders: BTreeSet<String> =
        snapshot.threads.values().flat_map(|s| s.messages.iter().map(|m| m.sender.clone())).collect();
    let targets = late_parent_targets(messages, snapshot);
    let mut asked: BTreeSet<(Uuid, &str)> = BTreeSet::new();
    for m in messages.iter().filter(|m| m.channel == Channel::Email) {
        let rule = policy.reply_senders_by_endpoint.get(m.endpoint.as_str()).copied().unwrap_or(policy.reply_senders);
        // A duplicate (R0) is placed nowhere: nothing to ask.
        if rule == SenderPolicy::Any || snapshot.messages.contains_key(&MessageKey::of(m)) {
            continue;
        }
        let sender = m.contact.as_str();
        // R8 may merge the conversation this message joins into wherever
        // a parent of the batch lands: a reply to the batch, or to a reply
        // already held in a conversation R8 may merge.
        let extends_a_thread = m.reference_candidates().any(|r| {
            snapshot.messages.get(&MessageKey::named_by(m, r)).is_some_and(|conv| snapshot.threads.contains_key(conv))
        });
        if m.reference_candidates().any(|r| own.contains(r)) {
            asked.extend(snapshot.conversations.keys().map(|id| (*id, sender)));
        } else if extends_a_thread {
            asked.extend(targets.iter().map(|id| (*id, sender)));
        }
        for r in m.reference_candidates() {
            let Some(id) = snapshot.messages.get(&MessageKey::named_by(m, r)).copied() else { continue };
            // The chain, as the planner follows it.
            asked.extend(snapshot.chain(id).into_iter().map(|c| (c, sender)));
        }
    }
    // R8 merges only replies whose senders may join where their parent
    // landed, which may be any conversation of the snapshot.
    let policed = messages.iter().any(|m| {
        m.channel == Channel::Email
            && policy.reply_senders_by_endpoint.get(m.endpoint.as_str()).copied().unwrap_or(policy.reply_senders)
                != SenderPolicy::Any
    });
    if policed {
        for sender in &thread_senders {
            asked.extend(targets.iter().map(|id| (*id, sender.as_str())));
        }
    }
    // R8 may merge a thread's conversation into one where a parent lands;
    // its participants then count there, so a sender asked about such a
    // conversation is asked about the threads' conversations too.
    let senders: BTreeSet<&str> = asked.iter().filter(|(c, _)| targets.contains(c)).map(|(_, s)| *s).collect();
    for id in snapshot.threads.keys() {
        asked.extend(senders.iter().map(|s| (*id, *s)));
    }
    if asked.is_empty() {
        return Ok(());
    }
    let (ids, senders): (Vec<Uuid>, Vec<&str>) = asked.into_iter().unzip();
    let domains: Vec<&str> = senders.iter().map(|s| domain_of(s)).collect();
    let rows: Vec<rows::ParticipationRow> =
        sqlx::query_as(PARTICIPATION_SQL).bind(&ids).bind(&senders).bind(&domains).fetch_all(&mut **tx).await?;
    for row in rows {
        if row.by_address {
            snapshot.participants.insert((row.conv, row.sender));
        }
        if row.by_domain {
            snapshot.participant_domains.insert((row.conv, row.domain));
        }
    }
    Ok(())
}

/// Where R8 may merge a conversation into: the ongoing ends of the merge
/// chains a batch message with replies waiting can land on (its
/// references', its pair's and its replies' conversations); every ongoing
/// conversation of the snapshot when the batch holds replies to its own
/// messages (one of those may land anywhere first). Empty when no shapes
/// were read: R8 then only links.
fn late_parent_targets(messages: &[&InboundMessage], snapshot: &Snapshot) -> BTreeSet<Uuid> {
    let mut targets = BTreeSet::new();
    if snapshot.threads.is_empty() {
        return targets;
    }
    let ongoing_end = |mut id: Uuid| {
        for _ in 0..64 {
            let row = snapshot.conversations.get(&id)?;
            match row.merged_into {
                Some(next) => id = next,
                None => return row.conversation.is_ongoing().then_some(id),
            }
        }
        None
    };
    let new: Vec<&InboundMessage> =
        messages.iter().filter(|m| !snapshot.messages.contains_key(&MessageKey::of(m))).copied().collect();
    if replies_within(&new) {
        targets.extend(snapshot.conversations.keys().filter_map(|id| ongoing_end(*id)));
        return targets;
    }
    for m in new {
        let Some(replies) = snapshot.replies.get(&MessageKey::of(m)) else { continue };
        let referenced =
            m.reference_candidates().filter_map(|r| snapshot.messages.get(&MessageKey::named_by(m, r)).copied());
        let pair = snapshot.pairs.get(&PairKey::of(m)).into_iter().flatten().copied();
        for id in replies.iter().copied().chain(referenced).chain(pair) {
            targets.extend(ongoing_end(id));
        }
    }
    targets
}

/// Adds one row of [`SNAPSHOT_SQL`] to the snapshot.
fn add_row(row: SnapshotRow, snapshot: &mut Snapshot) {
    match row {
        SnapshotRow::Now(now) => snapshot.now = now,
        SnapshotRow::Message { channel, endpoint, id, conv } => {
            snapshot.messages.insert(MessageKey { channel, endpoint, external_id: id }, conv);
        }
        SnapshotRow::Pair { channel, endpoint, contact, conv } => {
            snapshot.pairs.entry(PairKey { channel, endpoint, contact }).or_default().push(conv);
        }
        SnapshotRow::Reply { channel, endpoint, id, conv } => {
            snapshot.replies.entry(MessageKey { channel, endpoint, external_id: id }).or_default().push(conv);
        }
        SnapshotRow::Conversation(row) => add_conversation(snapshot, row),
        SnapshotRow::Customer { channel, address, person, name } => {
            snapshot.customers.insert((channel, address), Customer { id: person, name });
        }
        SnapshotRow::Holder { message_id, conv, created_at, status } => {
            let holder = Holder { conversation_id: conv, created_at, status };
            snapshot.holders.entry(message_id).or_default().push(holder);
        }
        SnapshotRow::Link { from, to } => {
            snapshot.related_links.insert((from, to));
        }
    }
}

/// Adds a locked conversation's row.
fn add_conversation(snapshot: &mut Snapshot, row: rows::ConversationRow) {
    let conversation =
        Conversation { id: row.id, status: row.status, created_at: row.created_at, closed_at: row.closed_at };
    snapshot.conversations.insert(row.id, ConversationRow { conversation, merged_into: row.merged_into });
}

/// A merge committed between reading a chain and locking its end shows as a
/// locked row pointing at a conversation not loaded yet.
fn missing_chain_ends(snapshot: &Snapshot) -> Vec<Uuid> {
    let missing: BTreeSet<Uuid> = snapshot
        .conversations
        .values()
        .filter_map(|r| r.merged_into)
        .filter(|id| !snapshot.conversations.contains_key(id))
        .collect();
    missing.into_iter().collect()
}

/// The batch's reference candidates that are already stored, read before
/// the locks so that only the others need one (see [`super::locks::keys_for`]).
/// A stored message is never removed, so the answer cannot go stale.
pub(super) async fn stored_references(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[&InboundMessage],
) -> Result<HashSet<MessageKey>, sqlx::Error> {
    let mut keys: HashSet<(Channel, &str, &str)> = HashSet::new();
    for m in messages {
        for r in m.reference_candidates() {
            keys.insert((m.channel, m.endpoint.as_str(), r.as_str()));
        }
    }
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let (channels, endpoints, ids) = columns(keys.into_iter());
    let rows: Vec<StoredKey> = sqlx::query_as(
        "SELECT m.channel, m.endpoint, m.external_id
         FROM unnest($1::text[], $2::text[], $3::text[]) AS k(channel, endpoint, external_id)
         JOIN messages m ON m.channel = k.channel AND m.endpoint = k.endpoint AND m.external_id = k.external_id",
    )
    .bind(&channels)
    .bind(&endpoints)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|k| MessageKey { channel: k.channel, endpoint: k.endpoint, external_id: k.external_id })
        .collect())
}

/// Loads and locks the merge chains from `pending` (ends that merges
/// committed while [`SNAPSHOT_SQL`] ran made reachable), round after round
/// while agents merge under our feet. Usually `pending` is empty and this
/// costs nothing.
async fn lock_chains(
    tx: &mut Transaction<'_, Postgres>,
    mut pending: Vec<Uuid>,
    snapshot: &mut Snapshot,
) -> Result<(), sqlx::Error> {
    for _ in 1..MAX_CHAIN_ROUNDS {
        if pending.is_empty() {
            break;
        }
        // Ids are locked in ascending order, the same in every batch.
        let rows: Vec<rows::ConversationRow> = sqlx::query_as(
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
            add_conversation(snapshot, row);
        }
        pending = missing_chain_ends(snapshot);
    }
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
