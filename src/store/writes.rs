//! Carries out a [`Placement`]: creates the conversation if needed, stores
//! the message, reopens, links, and appends to the audit
//! (`conversation_events`). Also R7's sibling links.

use super::Item;
use crate::domain::InboundMessage;
use crate::placement::{sibling_links, CopyHolder, Placement, Status, Target};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};
use std::collections::HashSet;
use uuid::Uuid;

/// Where a message landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Landed {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    /// A conversation was created for it.
    pub created: bool,
}

pub(super) async fn carry_out(
    tx: &mut Transaction<'_, Postgres>,
    item: &Item,
    plan: &Placement,
    message_id: Uuid,
) -> Result<Landed, sqlx::Error> {
    let msg = &item.message;
    let (conversation_id, created) = match &plan.target {
        Target::Existing(conv) => (conv.id, false),
        Target::New(new) => {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO conversations (id, status, priority, topic, customer_id, queue, form,
                                            origin_channel, origin_endpoint, origin_contact)
                 SELECT $1, 'open', COALESCE(src.priority, 'normal'), $2, $3, src.queue, src.form, $5, $6, $7
                 FROM (SELECT 1) AS one LEFT JOIN conversations src ON src.id = $4",
            )
            .bind(id)
            .bind(&new.topic)
            .bind(new.customer_id)
            .bind(new.copy_from)
            .bind(msg.channel.as_str())
            .bind(msg.endpoint.as_str())
            .bind(msg.contact.as_str())
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "INSERT INTO conversation_channels (conversation_id, channel, endpoint, contact) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(msg.channel.as_str())
            .bind(msg.endpoint.as_str())
            .bind(msg.contact.as_str())
            .execute(&mut **tx)
            .await?;
            let kind = if plan.follow_up_of.is_some() {
                "follow_up_started"
            } else {
                "created"
            };
            event(
                tx,
                id,
                kind,
                None,
                Status::Open,
                message_id,
                plan.follow_up_of,
            )
            .await?;
            (id, true)
        }
    };

    insert_message(tx, item, conversation_id, message_id).await?;

    sqlx::query(
        "UPDATE conversations SET last_message_at = GREATEST(last_message_at, $2), updated_at = clock_timestamp(),
                status = CASE WHEN $3 THEN 'open' ELSE status END
         WHERE id = $1",
    )
    .bind(conversation_id)
    .bind(msg.received_at)
    .bind(plan.reopen)
    .execute(&mut **tx)
    .await?;

    if let (true, Target::Existing(conv)) = (plan.reopen, &plan.target) {
        event(
            tx,
            conversation_id,
            "reopened",
            Some(conv.status),
            Status::Open,
            message_id,
            None,
        )
        .await?;
    }
    if let Some(closed) = plan.follow_up_of {
        let inserted = link(tx, conversation_id, closed, "follow_up", message_id).await?;
        if inserted && !created {
            let status = current_status(plan);
            event(
                tx,
                conversation_id,
                "linked",
                Some(status),
                status,
                message_id,
                Some(closed),
            )
            .await?;
        }
    }
    Ok(Landed {
        conversation_id,
        message_id,
        created,
    })
}

/// The status of the landing conversation after the plan.
fn current_status(plan: &Placement) -> Status {
    match &plan.target {
        Target::Existing(_) if plan.reopen => Status::Open,
        Target::Existing(conv) => conv.status,
        Target::New(_) => Status::Open,
    }
}

async fn insert_message(
    tx: &mut Transaction<'_, Postgres>,
    item: &Item,
    conversation_id: Uuid,
    message_id: Uuid,
) -> Result<(), sqlx::Error> {
    let msg = &item.message;
    // Details are plain data (strings, numbers); serializing them cannot fail.
    let details = serde_json::to_value(&msg.details).unwrap_or_default();
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, channel, direction, endpoint, contact, external_id, subject,
                               body_text, body_html, in_reply_to, \"references\", auto_generated, sent_at,
                               received_at, kafka_topic, kafka_partition, kafka_offset, raw, details)
         VALUES ($1, $2, $3, 'inbound', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(message_id)
    .bind(conversation_id)
    .bind(msg.channel.as_str())
    .bind(msg.endpoint.as_str())
    .bind(msg.contact.as_str())
    .bind(msg.external_id.as_str())
    .bind(msg.subject.as_deref())
    .bind(&msg.body_text)
    .bind(msg.body_html.as_deref())
    .bind(msg.in_reply_to.as_deref())
    .bind(&msg.references)
    .bind(msg.auto_generated)
    .bind(msg.sent_at)
    .bind(msg.received_at)
    .bind(&item.source.topic)
    .bind(item.source.partition)
    .bind(item.source.offset)
    .bind(msg.raw.as_deref())
    .bind(details)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts a link; `false` when it was there already.
async fn link(
    tx: &mut Transaction<'_, Postgres>,
    from: Uuid,
    to: Uuid,
    kind: &str,
    cause: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO conversation_links (conversation_id, related_conversation_id, kind, cause_message_id)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(from)
    .bind(to)
    .bind(kind)
    .bind(cause)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[allow(clippy::too_many_arguments)]
async fn event(
    tx: &mut Transaction<'_, Postgres>,
    conversation_id: Uuid,
    kind: &str,
    from: Option<Status>,
    to: Status,
    message_id: Uuid,
    related: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO conversation_events (conversation_id, kind, from_status, to_status, message_id, related_conversation_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(conversation_id)
    .bind(kind)
    .bind(from.map(Status::as_str))
    .bind(to.as_str())
    .bind(message_id)
    .bind(related)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// R7: recomputes the `related` links between the conversations holding
/// copies of this email (same Message-ID, inbound, any endpoint) so that
/// each points at the main one. Runs under the Message-ID's advisory lock.
/// Merge chains are not followed: a copy belongs to the conversation it was
/// stored in, which keeps the links stable when agents merge later.
pub(super) async fn link_siblings(
    tx: &mut Transaction<'_, Postgres>,
    msg: &InboundMessage,
    message_id: Uuid,
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT c.id, c.created_at, c.status FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.channel = 'email' AND m.external_id = $1 AND m.direction = 'inbound'",
    )
    .bind(msg.external_id.as_str())
    .fetch_all(&mut **tx)
    .await?;
    if rows.len() < 2 {
        return Ok(());
    }
    let holders: Vec<CopyHolder> = rows
        .iter()
        .map(|r| CopyHolder {
            conversation_id: r.get("id"),
            created_at: r.get::<DateTime<Utc>, _>("created_at"),
        })
        .collect();
    let ids: Vec<Uuid> = holders.iter().map(|h| h.conversation_id).collect();
    let wanted: HashSet<(Uuid, Uuid)> = sibling_links(&holders).into_iter().collect();
    let existing: HashSet<(Uuid, Uuid)> = sqlx::query(
        "SELECT conversation_id, related_conversation_id FROM conversation_links
         WHERE kind = 'related' AND conversation_id = ANY($1) AND related_conversation_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    // A link made when an older holder was not yet known points at the wrong
    // main conversation; it goes, so the final links depend only on the set.
    for (from, to) in existing.difference(&wanted) {
        sqlx::query("DELETE FROM conversation_links WHERE conversation_id = $1 AND related_conversation_id = $2 AND kind = 'related'")
            .bind(from)
            .bind(to)
            .execute(&mut **tx)
            .await?;
    }
    let mut missing: Vec<&(Uuid, Uuid)> = wanted.difference(&existing).collect();
    missing.sort();
    for (from, to) in missing {
        if link(tx, *from, *to, "related", message_id).await? {
            let status = rows
                .iter()
                .find(|r| r.get::<Uuid, _>("id") == *from)
                .and_then(|r| Status::parse(r.get("status")))
                .unwrap_or(Status::Open);
            event(
                tx,
                *from,
                "linked",
                Some(status),
                status,
                message_id,
                Some(*to),
            )
            .await?;
        }
    }
    Ok(())
}
