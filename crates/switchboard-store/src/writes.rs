//! Writes a [`BatchPlan`] with one set-based statement per table, whatever
//! the batch's count of messages: conversations, their channels, messages,
//! conversation updates, audit events, and links. Messages alone are split
//! by bytes ([`MESSAGE_CHUNK_BYTES`]), so that a batch of emails does not
//! leave every pooled connection with a buffer of its size.

use super::outbox::InsertedLink;
use super::Item;
use crate::domain::InboundMessage;
use crate::placement::batch::{BatchPlan, LinkKind, MessageRow};
use crate::placement::{self, CopyHolder};
use crate::records::{ConversationChange, LateMerge, NewConversation, NewEvent, NewLink, NewMessage};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use std::collections::BTreeMap;
use uuid::Uuid;

pub(super) async fn write(
    tx: &mut Transaction<'_, Postgres>,
    items: &[&Item],
    plan: &BatchPlan,
) -> Result<Vec<Inserted>, sqlx::Error> {
    insert_conversations(tx, plan).await?;
    insert_messages(tx, items, plan).await?;
    update_conversations(tx, plan).await?;
    merge_late_threads(tx, plan).await?;
    insert_events(tx, plan).await?;
    relink(tx, plan).await
}

/// R8: merges each conversation of replies that came first into its
/// parent's, with the very statement of an agent's merge (contract section
/// 4). The rows are locked by the snapshot or were created by this batch.
async fn merge_late_threads(tx: &mut Transaction<'_, Postgres>, plan: &BatchPlan) -> Result<(), sqlx::Error> {
    if plan.merges.is_empty() {
        return Ok(());
    }
    let merges: Vec<LateMerge> = plan.merges.iter().map(LateMerge::of).collect();
    sqlx::query(
        "UPDATE conversations c
         SET merged_into = u.target, status = 'closed', closed_at = clock_timestamp(), updated_at = clock_timestamp()
         FROM unnest($1::switchboard_late_merge[]) AS u
         WHERE c.id = u.id",
    )
    .bind(&merges)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_conversations(tx: &mut Transaction<'_, Postgres>, plan: &BatchPlan) -> Result<(), sqlx::Error> {
    let rows = &plan.new_conversations;
    if rows.is_empty() {
        return Ok(());
    }
    // Every new conversation receives a message in this batch: its
    // `last_message_at` is written here, so it needs no UPDATE (a second
    // row version and index entries) in `update_conversations`.
    let last: std::collections::HashMap<Uuid, DateTime<Utc>> =
        plan.updates.iter().map(|u| (u.id, u.last_message_at)).collect();
    let rows: Vec<NewConversation<'_>> =
        rows.iter().map(|r| NewConversation::of(r, last.get(&r.id).copied())).collect();
    // A follow-up copies form, queue and priority from the closed one.
    sqlx::query(
        "INSERT INTO conversations (id, status, priority, topic, customer_id, queue, form, created_at, updated_at,
                                    last_message_at, origin_channel, origin_endpoint, origin_contact)
         SELECT n.id, 'open', COALESCE(src.priority, 'normal'), n.topic, n.customer_id, src.queue, src.form,
                n.created_at, n.created_at, n.last_message_at, n.channel, n.endpoint, n.contact
         FROM unnest($1::switchboard_new_conversation[]) AS n
         LEFT JOIN conversations src ON src.id = n.copy_from",
    )
    .bind(&rows)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO conversation_channels (conversation_id, channel, endpoint, contact, added_at)
         SELECT n.id, n.channel, n.endpoint, n.contact, n.created_at FROM unnest($1::switchboard_new_conversation[]) AS n",
    )
    .bind(&rows)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Most bytes of bodies and raw sources one `INSERT INTO messages` carries.
/// The connection's write buffer grows to the largest statement it sends and
/// keeps that size, so one statement for a whole batch of emails (2 MiB and
/// more) left every pooled connection holding that much; in chunks each
/// holds about this (docs/operations.md, "Memory").
const MESSAGE_CHUNK_BYTES: usize = 512 * 1024;

/// The bytes a message puts into the statement that stores it.
fn stored_bytes(m: &InboundMessage) -> usize {
    m.body_text.len() + m.body_html.as_ref().map_or(0, String::len) + m.raw.as_ref().map_or(0, Vec::len)
}

/// Whether one of `messages` is larger than a chunk: its statement then
/// grew the connection's write buffer past what chunks bound, and the
/// connection should give that buffer back.
pub(super) fn outgrows_a_chunk(messages: &[&InboundMessage]) -> bool {
    messages.iter().any(|m| stored_bytes(m) > MESSAGE_CHUNK_BYTES)
}

async fn insert_messages(
    tx: &mut Transaction<'_, Postgres>,
    items: &[&Item],
    plan: &BatchPlan,
) -> Result<(), sqlx::Error> {
    let mut rows = &plan.messages[..];
    while !rows.is_empty() {
        let take = chunk_len(rows.iter().map(|row| stored_bytes(&items[row.item].message)), MESSAGE_CHUNK_BYTES);
        insert_message_rows(tx, items, &rows[..take]).await?;
        rows = &rows[take..];
    }
    Ok(())
}

/// How many of the next rows, of these sizes, go into one statement: as
/// many as fit in `cap` bytes, and at least one however large.
fn chunk_len(sizes: impl Iterator<Item = usize>, cap: usize) -> usize {
    let mut bytes = 0;
    sizes
        .take_while(|size| {
            bytes += size;
            bytes <= cap
        })
        .count()
        .max(1)
}

async fn insert_message_rows(
    tx: &mut Transaction<'_, Postgres>,
    items: &[&Item],
    rows: &[MessageRow],
) -> Result<(), sqlx::Error> {
    let messages: Vec<NewMessage<'_>> = rows.iter().map(|row| NewMessage::of(items[row.item], row)).collect();
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, channel, direction, endpoint, contact, external_id, subject,
                               body_text, body_html, in_reply_to, \"references\", auto_generated, sent_at,
                               received_at, kafka_topic, kafka_partition, kafka_offset, raw, details)
         SELECT u.id, u.conversation_id, u.channel, 'inbound', u.endpoint, u.contact, u.external_id, u.subject,
                u.body_text, u.body_html, u.in_reply_to, u.\"references\", u.auto_generated, u.sent_at,
                u.received_at, u.kafka_topic, u.kafka_partition, u.kafka_offset, u.raw, u.details
         FROM unnest($1::switchboard_new_message[]) AS u",
    )
    .bind(&messages)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn update_conversations(tx: &mut Transaction<'_, Postgres>, plan: &BatchPlan) -> Result<(), sqlx::Error> {
    // Conversations created by this batch got their `last_message_at` on
    // insert and are never reopened (they are open).
    let new: std::collections::HashSet<Uuid> = plan.new_conversations.iter().map(|c| c.id).collect();
    let updates: Vec<_> = plan.updates.iter().filter(|u| !new.contains(&u.id)).collect();
    if updates.is_empty() {
        return Ok(());
    }
    let changes: Vec<ConversationChange> = updates.into_iter().map(ConversationChange::of).collect();
    sqlx::query(
        "UPDATE conversations c
         SET status = CASE WHEN u.reopen THEN 'open' ELSE c.status END,
             last_message_at = GREATEST(c.last_message_at, u.last_message_at),
             updated_at = clock_timestamp()
         FROM unnest($1::switchboard_conversation_change[]) AS u
         WHERE c.id = u.id",
    )
    .bind(&changes)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_events(tx: &mut Transaction<'_, Postgres>, plan: &BatchPlan) -> Result<(), sqlx::Error> {
    if plan.events.is_empty() {
        return Ok(());
    }
    let events: Vec<NewEvent<'_>> = plan.events.iter().map(NewEvent::of).collect();
    // WITH ORDINALITY keeps the audit in the order things happened.
    sqlx::query(
        "INSERT INTO conversation_events (conversation_id, kind, from_status, to_status, message_id, related_conversation_id)
         SELECT conversation_id, kind, from_status, to_status, message_id, related
         FROM unnest($1::switchboard_new_event[]) WITH ORDINALITY
              AS e(conversation_id, kind, from_status, to_status, message_id, related, n)
         ORDER BY n",
    )
    .bind(&events)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Drops stale sibling links no Message-ID calls for any more, inserts the
/// new links, and audits each link that did not exist yet with a `linked`
/// event.
///
/// Links are the union over every Message-ID (and R1r), so whether a stale
/// link may go depends on other Message-IDs than the batch's own, which
/// other batches may be changing. Each `related` link this batch inserts or
/// may delete is therefore locked first (ascending keys, after every other
/// lock of the batch), and the facts of the "still needed" check
/// ([`drop_stale_siblings`]) are read after those locks, where they show what
/// the batch that held them committed.
/// Returns the links it inserted.
async fn relink(tx: &mut Transaction<'_, Postgres>, plan: &BatchPlan) -> Result<Vec<Inserted>, sqlx::Error> {
    let mut keys: Vec<i64> = plan
        .links
        .iter()
        .filter(|l| l.kind == LinkKind::Related)
        .map(|l| (l.from, l.to))
        .chain(plan.stale_siblings.iter().copied())
        .map(|(from, to)| super::locks::link_key(from, to))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if !keys.is_empty() {
        super::locks::acquire_only(tx, &keys).await?;
    }
    if !plan.stale_siblings.is_empty() {
        drop_stale_siblings(tx, &plan.stale_siblings).await?;
    }
    if plan.links.is_empty() {
        return Ok(Vec::new());
    }
    let links: Vec<NewLink<'_>> = plan.links.iter().map(NewLink::of).collect();
    // A link another rule also calls for stops being R7's alone. A `related`
    // link and its reverse are one link (I5): the batch wants each pair
    // once, and a pair stored either way is not inserted again (the link
    // locks above make that check exact; migration 20261206000000 makes
    // the store refuse it too). Written without naming a conflict target,
    // so a worker runs on the schema before that migration as well.
    let inserted = sqlx::query_as::<_, (Uuid, Uuid, String, Uuid, Option<String>, bool)>(
        "WITH wanted AS (
             SELECT DISTINCT ON (LEAST(from_id, to_id), GREATEST(from_id, to_id), kind) *
             FROM unnest($1::switchboard_new_link[]) WITH ORDINALITY AS w(from_id, to_id, kind, cause, status, sibling, n)
             ORDER BY LEAST(from_id, to_id), GREATEST(from_id, to_id), kind, sibling, n
         ), shared AS (
             UPDATE conversation_links l SET sibling_only = false
             FROM wanted w
             WHERE l.kind = 'related' AND w.kind = 'related' AND l.sibling_only AND NOT w.sibling
               AND ((l.conversation_id, l.related_conversation_id) = (w.from_id, w.to_id)
                    OR (l.conversation_id, l.related_conversation_id) = (w.to_id, w.from_id))
         ), upserted AS (
             INSERT INTO conversation_links (conversation_id, related_conversation_id, kind, cause_message_id, sibling_only)
             SELECT from_id, to_id, kind, cause, sibling FROM wanted w
             WHERE NOT (w.kind = 'related' AND EXISTS (
                 SELECT 1 FROM conversation_links l
                 WHERE l.kind = 'related' AND l.conversation_id = w.to_id AND l.related_conversation_id = w.from_id))
             ORDER BY n
             ON CONFLICT DO NOTHING
             RETURNING conversation_id, related_conversation_id, kind
         )
, audited AS (
             INSERT INTO conversation_events (conversation_id, kind, from_status, to_status, message_id, related_conversation_id)
             SELECT w.from_id, 'linked', w.status, w.status, w.cause, w.to_id
             FROM upserted i JOIN wanted w ON w.from_id = i.conversation_id AND w.to_id = i.related_conversation_id AND w.kind = i.kind
             WHERE w.status IS NOT NULL
             ORDER BY w.n
         )
         SELECT w.from_id, w.to_id, w.kind, w.cause, w.status, w.sibling
         FROM upserted i JOIN wanted w ON w.from_id = i.conversation_id AND w.to_id = i.related_conversation_id AND w.kind = i.kind
         ORDER BY w.n",
    )
    .bind(&links)
    .fetch_all(&mut **tx)
    .await?;
    Ok(inserted
        .into_iter()
        .map(|(from, to, kind, cause, status, sibling)| Inserted {
            link: InsertedLink { from, to, kind, cause, status },
            sibling,
        })
        .collect())
}

/// Deletes the candidate sibling links that R7 decides no Message-ID calls
/// for any more ([`placement::stale_sibling_links`]: the decision is the
/// planner's; this reads its facts and carries out its answer). The facts
/// are read here, after the batch's messages are written and under the
/// candidates' link locks: which candidates R7 alone made
/// (`sibling_only`; a link R1r also calls for never goes), and every holder
/// of every email with inbound copies at both ends of one.
async fn drop_stale_siblings(
    tx: &mut Transaction<'_, Postgres>,
    candidates: &[(Uuid, Uuid)],
) -> Result<(), sqlx::Error> {
    let (from, to): (Vec<Uuid>, Vec<Uuid>) = candidates.iter().copied().unzip();
    let sibling_only: Vec<(Uuid, Uuid)> =
        sqlx::query_as(SIBLING_ONLY_LINKS).bind(&from).bind(&to).fetch_all(&mut **tx).await?;
    if sibling_only.is_empty() {
        return Ok(());
    }
    let (from, to): (Vec<Uuid>, Vec<Uuid>) = sibling_only.iter().copied().unzip();
    let rows: Vec<(String, Uuid, DateTime<Utc>)> =
        sqlx::query_as(SHARED_COPY_HOLDERS).bind(&from).bind(&to).fetch_all(&mut **tx).await?;
    let mut holders: BTreeMap<String, Vec<CopyHolder>> = BTreeMap::new();
    for (message_id, conversation_id, created_at) in rows {
        holders.entry(message_id).or_default().push(CopyHolder { conversation_id, created_at });
    }
    let stale = placement::stale_sibling_links(&sibling_only, &holders);
    if stale.is_empty() {
        return Ok(());
    }
    let (from, to): (Vec<Uuid>, Vec<Uuid>) = stale.into_iter().unzip();
    sqlx::query(DELETE_LINKS).bind(&from).bind(&to).execute(&mut **tx).await?;
    Ok(())
}

/// The candidates that exist and that R7 alone made.
const SIBLING_ONLY_LINKS: &str = "SELECT l.conversation_id, l.related_conversation_id
     FROM unnest($1::uuid[], $2::uuid[]) AS u(from_id, to_id)
     JOIN conversation_links l ON l.kind = 'related' AND l.sibling_only
      AND l.conversation_id = u.from_id AND l.related_conversation_id = u.to_id";

/// Every conversation holding an inbound copy of an email that has inbound
/// copies at both ends of one of the links: (Message-ID, conversation, its
/// creation).
const SHARED_COPY_HOLDERS: &str = "WITH shared AS (
         SELECT DISTINCT b.external_id
         FROM unnest($1::uuid[], $2::uuid[]) AS u(from_id, to_id)
         JOIN messages b ON b.channel = 'email' AND b.direction = 'inbound' AND b.conversation_id = u.from_id
         JOIN messages a ON a.channel = 'email' AND a.direction = 'inbound'
                        AND a.external_id = b.external_id AND a.conversation_id = u.to_id)
     SELECT DISTINCT h.external_id, c.id, c.created_at
     FROM shared s
     JOIN messages h ON h.channel = 'email' AND h.direction = 'inbound' AND h.external_id = s.external_id
     JOIN conversations c ON c.id = h.conversation_id";

/// Deletes the given `related` links, if R7 alone still makes them (the
/// flag is read above under the same locks; checked again for free).
const DELETE_LINKS: &str = "DELETE FROM conversation_links l USING unnest($1::uuid[], $2::uuid[]) AS u(from_id, to_id)
     WHERE l.kind = 'related' AND l.sibling_only AND l.conversation_id = u.from_id AND l.related_conversation_id = u.to_id";

/// A link the batch inserted; `sibling` when R7 alone made it.
pub(super) struct Inserted {
    pub link: InsertedLink,
    pub sibling: bool,
}

#[cfg(test)]
mod tests {
    use super::chunk_len;

    #[test]
    fn a_chunk_takes_the_rows_that_fit_and_at_least_one() {
        assert_eq!(chunk_len([100, 100, 100].into_iter(), 250), 2);
        assert_eq!(chunk_len([100, 100, 50].into_iter(), 250), 3, "exactly full");
        assert_eq!(chunk_len([10; 5].into_iter(), 250), 5, "all of a small batch");
        assert_eq!(chunk_len([600, 10].into_iter(), 512), 1, "a row larger than the cap goes alone");
        assert_eq!(chunk_len([300, 300].into_iter(), 512), 1);
    }
}
