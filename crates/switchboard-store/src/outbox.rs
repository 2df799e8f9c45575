//! The outbox (contract section 6): the events of a batch, built from its
//! plan and written in its own transaction, so an event exists exactly when
//! its decision committed. The worker's publisher sends and deletes
//! them.

use super::Item;
use crate::events::{CloudEvent, EventData, EventType, SourceRecord};
use crate::placement::batch::{AuditKind, BatchPlan, ItemResult};
use crate::placement::Status;
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

/// A link the batch inserted (not one that existed), with its audit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct InsertedLink {
    pub from: Uuid,
    pub to: Uuid,
    pub kind: String,
    pub cause: Uuid,
    /// Set for the links audited with a `linked` event.
    pub status: Option<String>,
}

/// One outbox row.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub key: Uuid,
    pub event: CloudEvent,
}

/// The batch's events in the order its decisions were taken: for each
/// placed message, the conversation it started, the message itself, the
/// reopen, the merges it caused, and the links it caused.
/// `ends` maps conversations a link names to the end of their merge chain
/// ([`chain_ends`]): a sibling link (R7) names the holders of an email's
/// copies as stored, and an agent may have merged one.
pub(super) fn events(
    items: &[&Item],
    plan: &BatchPlan,
    links: &[InsertedLink],
    ends: &HashMap<Uuid, Uuid>,
    time: &str,
) -> Vec<Row> {
    // Events are keyed by the conversation after merges: those of this
    // batch, and for links those already stored.
    let merged: HashMap<Uuid, Uuid> = plan.merges.iter().map(|m| (m.from, m.into)).collect();
    let key = |mut id: Uuid| {
        if let Some(end) = ends.get(&id) {
            return *end;
        }
        for _ in 0..64 {
            match merged.get(&id) {
                Some(next) => id = *next,
                None => break,
            }
        }
        id
    };
    // The audit rows and links each message caused, found once per batch
    // instead of by a scan per message.
    let mut caused_by: HashMap<Uuid, Vec<&crate::placement::batch::EventRow>> = HashMap::new();
    for e in &plan.events {
        caused_by.entry(e.message_id).or_default().push(e);
    }
    let mut links_by: HashMap<Uuid, Vec<&InsertedLink>> = HashMap::new();
    for l in links.iter().filter(|l| l.status.is_some()) {
        links_by.entry(l.cause).or_default().push(l);
    }
    let mut rows = Vec::new();
    for m in &plan.messages {
        let item = items[m.item];
        let msg = &item.message;
        let ItemResult::Placed { rule, .. } = plan.results[m.item] else { continue };
        let data = |conversation_id: Uuid| EventData {
            conversation_id,
            message_id: m.id,
            channel: msg.channel.as_str().to_owned(),
            endpoint: msg.endpoint.to_string(),
            contact: msg.contact.to_string(),
            status_before: None,
            status_after: None,
            rule: None,
            related_conversation_id: None,
            link_kind: None,
            source: SourceRecord {
                topic: item.source.topic.clone(),
                partition: item.source.partition,
                offset: item.source.offset,
            },
        };
        let mut push = |kind: EventType, data: EventData| {
            let k = key(data.conversation_id);
            rows.push(Row { key: k, event: CloudEvent::new(kind, k, time, data) });
        };
        let audit = caused_by.get(&m.id).map(Vec::as_slice).unwrap_or_default();
        let caused = |kind: AuditKind| audit.iter().filter(move |e| e.kind == kind);
        let status = |s: Option<Status>| s.map(|s| s.as_str().to_owned());
        for (kind, label) in [
            (EventType::ConversationCreated, AuditKind::Created),
            (EventType::ConversationFollowUpStarted, AuditKind::FollowUpStarted),
        ] {
            for e in caused(label) {
                let related_conversation_id = e.related;
                push(
                    kind,
                    EventData {
                        status_after: status(Some(e.to_status)),
                        related_conversation_id,
                        ..data(e.conversation_id)
                    },
                );
            }
        }
        push(
            EventType::MessagePlaced,
            EventData {
                status_before: status(m.status_before),
                status_after: status(Some(m.status_after)),
                rule: Some(rule.as_str().to_owned()),
                ..data(m.conversation_id)
            },
        );
        for (kind, label) in
            [(EventType::ConversationReopened, AuditKind::Reopened), (EventType::ConversationMerged, AuditKind::Merged)]
        {
            for e in caused(label) {
                push(
                    kind,
                    EventData {
                        status_before: status(e.from_status),
                        status_after: status(Some(e.to_status)),
                        related_conversation_id: e.related,
                        ..data(e.conversation_id)
                    },
                );
            }
        }
        for l in links_by.get(&m.id).map(Vec::as_slice).unwrap_or_default() {
            push(
                EventType::ConversationLinked,
                EventData {
                    status_before: l.status.clone(),
                    status_after: l.status.clone(),
                    related_conversation_id: Some(l.to),
                    link_kind: Some(l.kind.clone()),
                    ..data(l.from)
                },
            );
        }
    }
    rows
}

/// The end of the merge chain of each conversation an audited link starts
/// from, read in the batch's transaction (so this batch's R8 merges count).
/// Costs nothing for a batch that links nothing.
pub(super) async fn chain_ends(
    tx: &mut Transaction<'_, Postgres>,
    links: &[InsertedLink],
) -> Result<HashMap<Uuid, Uuid>, sqlx::Error> {
    let mut starts: Vec<Uuid> = links.iter().filter(|l| l.status.is_some()).map(|l| l.from).collect();
    starts.sort_unstable();
    starts.dedup();
    if starts.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "WITH RECURSIVE up (start, id, next, hops) AS (
             SELECT c.id, c.id, c.merged_into, 0 FROM conversations c WHERE c.id = ANY($1)
           UNION ALL
             SELECT up.start, c.id, c.merged_into, up.hops + 1 FROM up JOIN conversations c ON c.id = up.next
             WHERE up.hops < 64)
         SELECT start, id FROM up WHERE next IS NULL",
    )
    .bind(&starts)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Writes the batch's events as one row: one line each, `key TAB type TAB
/// CloudEvent JSON`, in order. One row per batch, not per event: a batch's
/// events cost one index entry, one delete, and compress together.
pub(super) async fn insert(tx: &mut Transaction<'_, Postgres>, rows: &[Row]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut payload = String::with_capacity(rows.len() * 700);
    for r in rows {
        // Serializing plain structs of strings and ids cannot fail.
        let json = serde_json::to_string(&r.event).unwrap_or_default();
        payload.push_str(&format!("{}\t{}\t{json}\n", r.key, r.event.kind));
    }
    sqlx::query("INSERT INTO event_outbox (events, payload) VALUES ($1, $2)")
        .bind(rows.len() as i32)
        .bind(&payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The session advisory lock the publishing worker holds (two-int form: a
/// key space apart from the batches' bigint locks).
const LEADER_LOCK: (i32, i32) = (0x5357, 0x4556);

/// An outbox row (one batch's events) as the publisher reads it.
#[derive(Clone, Debug)]
pub struct Pending {
    pub seq: i64,
    /// The events, in order.
    pub events: Vec<PendingEvent>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// One event of a [`Pending`] row.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub key: Uuid,
    pub kind: String,
    /// The CloudEvent, as JSON text.
    pub json: String,
}

impl Pending {
    fn parse(seq: i64, payload: &str, created_at: chrono::DateTime<chrono::Utc>) -> Pending {
        let events = payload
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, '\t');
                let key = parts.next()?.parse().ok()?;
                let kind = parts.next()?.to_owned();
                Some(PendingEvent { key, kind, json: parts.next()?.to_owned() })
            })
            .collect();
        Pending { seq, events, created_at }
    }
}

/// The one worker that publishes: it holds [`LEADER_LOCK`] on a connection
/// of its own (taken out of the pool), so two workers never publish the
/// same rows in two orders. Dropping it closes the connection, which
/// releases the lock for another worker.
pub struct OutboxLeader {
    conn: sqlx::PgConnection,
}

impl super::Store {
    /// Becomes the publishing worker if no other one is; `None` if another is.
    pub async fn outbox_leader(&self) -> Result<Option<OutboxLeader>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LEADER_LOCK.0)
            .bind(LEADER_LOCK.1)
            .fetch_one(&mut *conn)
            .await?;
        // Only a connection holding the lock leaves the pool (which then
        // opens another for batches): a pooled one must never carry it.
        Ok(got.then(|| OutboxLeader { conn: conn.detach() }))
    }

    /// How many events wait in the outbox, and how long the oldest has.
    pub async fn outbox_size(&self) -> Result<(i64, f64), sqlx::Error> {
        sqlx::query_as(
            "SELECT COALESCE(sum(events), 0)::bigint,
                    COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8, 0)
             FROM event_outbox",
        )
        .fetch_one(&self.pool)
        .await
    }
}

impl OutboxLeader {
    /// The oldest rows, in `seq` order, up to about `n` events (at least
    /// one row).
    pub async fn take(&mut self, n: usize) -> Result<Vec<Pending>, sqlx::Error> {
        let rows: Vec<(i64, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT seq, payload, created_at FROM (
                 SELECT seq, payload, created_at, sum(events) OVER (ORDER BY seq) - events AS before
                 FROM (SELECT * FROM event_outbox ORDER BY seq LIMIT 1000) oldest
             ) w
             WHERE before < $1 ORDER BY seq",
        )
        .bind(n as i64)
        .fetch_all(&mut self.conn)
        .await?;
        Ok(rows.into_iter().map(|(seq, payload, created_at)| Pending::parse(seq, &payload, created_at)).collect())
    }

    /// Deletes rows the broker has acknowledged.
    pub async fn delete(&mut self, seqs: &[i64]) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM event_outbox WHERE seq = ANY($1)").bind(seqs).execute(&mut self.conn).await?;
        Ok(())
    }
}
