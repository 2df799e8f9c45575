//! Looks up the [`Facts`] the decision table needs for one message, inside
//! the batch's transaction and under its advisory locks. Conversations the
//! decision depends on are locked `FOR NO KEY UPDATE`, so an agent's change
//! to them waits for the batch (or was committed before it and is seen).

use crate::domain::InboundMessage;
use crate::placement::{Conversation, Customer, Facts, Status};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

/// How many `merged_into` hops are followed before a chain is taken to end
/// there; agents merge a handful of times, a longer chain is a cycle.
const MAX_MERGE_HOPS: i32 = 64;

pub(super) async fn look_up(
    tx: &mut Transaction<'_, Postgres>,
    msg: &InboundMessage,
) -> Result<Facts, sqlx::Error> {
    let channel = msg.channel.as_str();
    let duplicate: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE channel = $1 AND endpoint = $2 AND external_id = $3)",
    )
    .bind(channel)
    .bind(msg.endpoint.as_str())
    .bind(msg.external_id.as_str())
    .fetch_one(&mut **tx)
    .await?;
    if duplicate {
        return Ok(Facts {
            duplicate,
            ..Facts::default()
        });
    }

    let references = resolve_references(tx, msg).await?;
    let (pair_ongoing, pair_latest_closed) = pair_conversations(tx, msg).await?;
    let customer = sqlx::query(
        "SELECT p.id, p.name FROM person_contacts pc JOIN people p ON p.id = pc.person_id
         WHERE pc.channel = $1 AND pc.address = $2 ORDER BY p.id LIMIT 1",
    )
    .bind(channel)
    .bind(msg.contact.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .map(|row| Customer {
        id: row.get("id"),
        name: row.get("name"),
    });

    Ok(Facts {
        duplicate,
        references,
        pair_ongoing,
        pair_latest_closed,
        customer,
    })
}

/// Maps each reference candidate stored at the same endpoint (inbound or
/// outbound) to its conversation's merge-chain end.
async fn resolve_references(
    tx: &mut Transaction<'_, Postgres>,
    msg: &InboundMessage,
) -> Result<HashMap<String, Conversation>, sqlx::Error> {
    let candidates: Vec<String> = msg.reference_candidates().map(str::to_owned).collect();
    if candidates.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT external_id, conversation_id FROM messages
         WHERE channel = $1 AND endpoint = $2 AND external_id = ANY($3)",
    )
    .bind(msg.channel.as_str())
    .bind(msg.endpoint.as_str())
    .bind(&candidates)
    .fetch_all(&mut **tx)
    .await?;
    let by_ref: Vec<(String, Uuid)> = rows
        .iter()
        .map(|r| (r.get("external_id"), r.get("conversation_id")))
        .collect();
    let ends = chain_ends(tx, by_ref.iter().map(|(_, c)| *c).collect()).await?;
    Ok(by_ref
        .into_iter()
        .filter_map(|(id, conv)| ends.get(&conv).map(|end| (id, *end)))
        .collect())
}

/// R3 and R4 facts for the message's pair: its ongoing conversation (one
/// bound to the pair directly wins over one reached through a merge, then the
/// latest created), and its latest conversation when that one is over.
async fn pair_conversations(
    tx: &mut Transaction<'_, Postgres>,
    msg: &InboundMessage,
) -> Result<(Option<Conversation>, Option<Conversation>), sqlx::Error> {
    // The origin columns are read as well as `conversation_channels` so that
    // I1's unique index and this lookup can never disagree.
    let rows = sqlx::query(
        "SELECT c.id, c.created_at FROM conversations c
         WHERE c.id IN (SELECT conversation_id FROM conversation_channels
                        WHERE channel = $1 AND endpoint = $2 AND contact = $3)
            OR (c.origin_channel = $1 AND c.origin_endpoint = $2 AND c.origin_contact = $3)
         ORDER BY c.created_at DESC, c.id DESC",
    )
    .bind(msg.channel.as_str())
    .bind(msg.endpoint.as_str())
    .bind(msg.contact.as_str())
    .fetch_all(&mut **tx)
    .await?;
    if rows.is_empty() {
        return Ok((None, None));
    }
    let bound: Vec<Uuid> = rows.iter().map(|r| r.get("id")).collect();
    let ends = chain_ends(tx, bound.clone()).await?;
    // `bound` is newest first, so the first match of each kind is the latest.
    let ongoing_direct = bound
        .iter()
        .filter_map(|id| ends.get(id).filter(|end| end.id == *id && end.is_ongoing()))
        .next();
    let ongoing_merged = bound
        .iter()
        .filter_map(|id| ends.get(id).filter(|end| end.is_ongoing()))
        .next();
    let ongoing = ongoing_direct.or(ongoing_merged).copied();
    let latest_closed = match ongoing {
        Some(_) => None,
        None => bound.first().and_then(|id| ends.get(id)).copied(),
    };
    Ok((ongoing, latest_closed))
}

/// Follows `merged_into` from each conversation to the end of its chain and
/// locks the ends. A chain that changes while we lock it (an agent merged
/// the end meanwhile) is followed again.
async fn chain_ends(
    tx: &mut Transaction<'_, Postgres>,
    starts: Vec<Uuid>,
) -> Result<HashMap<Uuid, Conversation>, sqlx::Error> {
    let mut result = HashMap::new();
    let mut pending = starts;
    pending.sort_unstable();
    pending.dedup();
    for attempt in 0..8 {
        if pending.is_empty() {
            break;
        }
        let rows = sqlx::query(
            "WITH RECURSIVE chain (start, id, merged_into, hops) AS (
                 SELECT id, id, merged_into, 0 FROM conversations WHERE id = ANY($1)
               UNION ALL
                 SELECT chain.start, c.id, c.merged_into, chain.hops + 1
                 FROM chain JOIN conversations c ON c.id = chain.merged_into
                 WHERE chain.hops < $2
             )
             SELECT DISTINCT ON (start) start, id FROM chain ORDER BY start, hops DESC",
        )
        .bind(&pending)
        .bind(MAX_MERGE_HOPS)
        .fetch_all(&mut **tx)
        .await?;
        let pairs: Vec<(Uuid, Uuid)> = rows.iter().map(|r| (r.get("start"), r.get("id"))).collect();
        let mut end_ids: Vec<Uuid> = pairs.iter().map(|(_, end)| *end).collect();
        end_ids.sort_unstable();
        end_ids.dedup();
        let locked = lock_conversations(tx, &end_ids).await?;
        let mut again = Vec::new();
        for (start, end) in pairs {
            match locked.get(&end) {
                Some((conv, None)) => {
                    result.insert(start, *conv);
                }
                // Merged after the chain was read, or a cycle cut at MAX_MERGE_HOPS.
                Some((conv, Some(_))) if attempt == 7 => {
                    result.insert(start, *conv);
                }
                _ => again.push(start),
            }
        }
        pending = again;
    }
    Ok(result)
}

/// Locks conversations in id order (a fixed order keeps lock waits between
/// workers acyclic for the rows of one lookup) and reads them.
async fn lock_conversations(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (Conversation, Option<Uuid>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, status, created_at, closed_at, merged_into FROM conversations
         WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let status: String = row.get("status");
        // The CHECK constraint admits only the five statuses.
        let status = Status::parse(&status).unwrap_or(Status::Open);
        let conv = Conversation {
            id: row.get("id"),
            status,
            created_at: row.get::<DateTime<Utc>, _>("created_at"),
            closed_at: row.get("closed_at"),
        };
        out.insert(conv.id, (conv, row.get("merged_into")));
    }
    Ok(out)
}
