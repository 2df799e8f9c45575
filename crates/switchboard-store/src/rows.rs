//! The rows the store reads, typed. Each is decoded with `try_get`, so a
//! column of the wrong type, an unexpected NULL, or a `kind`, channel or
//! status this code does not know is a decode error, never a panic; the
//! failure policy reads such an error as the schema's ([`crate::of_postgres`]:
//! the statements and the schema disagree, as after a half-applied
//! upgrade), so the partition waits for `migrate` instead of dead-lettering
//! records that did nothing wrong.

use crate::domain::{Channel, ExternalId};
use crate::placement::late_parent::{MessageFacts, Standing};
use crate::placement::Status;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};
use uuid::Uuid;

/// One row of [`crate::SNAPSHOT_SQL`], by its `kind` (the table in
/// `snapshot_sql`).
#[derive(Debug, PartialEq)]
pub(crate) enum SnapshotRow {
    /// The database clock, read after the locks.
    Now(DateTime<Utc>),
    /// A stored message (R0, R1, R2) and its conversation.
    Message { channel: Channel, endpoint: String, id: ExternalId, conv: Uuid },
    /// A conversation bound to a pair of the batch.
    Pair { channel: Channel, endpoint: String, contact: String, conv: Uuid },
    /// The conversation of a stored reply naming a message of the batch (R1r).
    Reply { channel: Channel, endpoint: String, id: ExternalId, conv: Uuid },
    /// A conversation on a merge chain, locked.
    Conversation(ConversationRow),
    /// A known customer: the person behind an address.
    Customer { channel: Channel, address: String, person: Uuid, name: Option<String> },
    /// A conversation holding a copy of an email (R7).
    Holder { message_id: ExternalId, conv: Uuid, created_at: DateTime<Utc>, status: Status },
    /// An existing `related` link among the holders.
    Link { from: Uuid, to: Uuid },
}

/// A conversation's row as the planner needs it.
#[derive(Debug, PartialEq)]
pub(crate) struct ConversationRow {
    pub(crate) id: Uuid,
    pub(crate) status: Status,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) closed_at: Option<DateTime<Utc>>,
    pub(crate) merged_into: Option<Uuid>,
}

impl FromRow<'_, PgRow> for SnapshotRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let kind: &str = row.try_get("kind")?;
        Ok(match kind {
            "now" => SnapshotRow::Now(row.try_get("created_at")?),
            "message" => SnapshotRow::Message {
                channel: channel(row)?,
                endpoint: row.try_get("endpoint")?,
                id: external_id(row, "key")?,
                conv: row.try_get("conv")?,
            },
            "pair" => SnapshotRow::Pair {
                channel: channel(row)?,
                endpoint: row.try_get("endpoint")?,
                contact: row.try_get("key")?,
                conv: row.try_get("conv")?,
            },
            "reply" => SnapshotRow::Reply {
                channel: channel(row)?,
                endpoint: row.try_get("endpoint")?,
                id: external_id(row, "key")?,
                conv: row.try_get("conv")?,
            },
            "conversation" => SnapshotRow::Conversation(ConversationRow {
                id: row.try_get("conv")?,
                status: status(row)?,
                created_at: row.try_get("created_at")?,
                closed_at: row.try_get("closed_at")?,
                merged_into: row.try_get("other")?,
            }),
            "customer" => SnapshotRow::Customer {
                channel: channel(row)?,
                address: row.try_get("key")?,
                person: row.try_get("conv")?,
                name: row.try_get("name")?,
            },
            "holder" => SnapshotRow::Holder {
                message_id: external_id(row, "key")?,
                conv: row.try_get("conv")?,
                created_at: row.try_get("created_at")?,
                status: status(row)?,
            },
            "link" => SnapshotRow::Link { from: row.try_get("conv")?, to: row.try_get("other")? },
            other => return Err(unknown("kind", other)),
        })
    }
}

/// A conversation read on its own (`id, status, created_at, closed_at,
/// merged_into`): the merge chains locked after the snapshot.
impl FromRow<'_, PgRow> for ConversationRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(ConversationRow {
            id: row.try_get("id")?,
            status: status(row)?,
            created_at: row.try_get("created_at")?,
            closed_at: row.try_get("closed_at")?,
            merged_into: row.try_get("merged_into")?,
        })
    }
}

/// A conversation R8 might merge, as `STANDING_SQL` reads it.
#[derive(Debug)]
pub(crate) struct StandingRow {
    pub(crate) conv: Uuid,
    pub(crate) standing: Standing,
}

impl FromRow<'_, PgRow> for StandingRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(StandingRow {
            conv: row.try_get("conv")?,
            standing: Standing {
                status: status(row)?,
                created_at: row.try_get("created_at")?,
                merged: row.try_get("merged")?,
                owned: row.try_get("owned")?,
                created_here: row.try_get("created_here")?,
                reopened: row.try_get("reopened")?,
            },
        })
    }
}

/// One message of a conversation R8 may merge (`THREADS_SQL`).
#[derive(Debug)]
pub(crate) struct ThreadRow {
    pub(crate) conv: Uuid,
    pub(crate) facts: MessageFacts,
    /// `None` for an id no decoder writes (blank, or with spaces around it):
    /// the agent desktop writes outbound messages, and no reference can
    /// name such an id.
    pub(crate) external_id: Option<ExternalId>,
    pub(crate) names: Vec<ExternalId>,
    pub(crate) contact: String,
    pub(crate) named_in: Vec<Uuid>,
}

impl FromRow<'_, PgRow> for ThreadRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let names: Vec<String> = row.try_get("names")?;
        Ok(ThreadRow {
            conv: row.try_get("conv")?,
            facts: MessageFacts { inbound: row.try_get("inbound")?, merged_by_hand: row.try_get("merged_by_hand")? },
            external_id: regular(row.try_get("external_id")?),
            // A name no decoder writes (an older one's blank) names nothing.
            names: names.iter().filter_map(|n| regular(n)).collect(),
            contact: row.try_get("contact")?,
            named_in: row.try_get("named_in")?,
        })
    }
}

/// Whether a sender, or the sender's domain, took part in a conversation
/// (`PARTICIPATION_SQL`).
#[derive(Debug, FromRow)]
pub(crate) struct ParticipationRow {
    pub(crate) conv: Uuid,
    pub(crate) sender: String,
    pub(crate) domain: String,
    pub(crate) by_address: bool,
    pub(crate) by_domain: bool,
}

/// A stored message's key.
#[derive(Debug)]
pub(crate) struct StoredKey {
    pub(crate) channel: Channel,
    pub(crate) endpoint: String,
    pub(crate) external_id: ExternalId,
}

impl FromRow<'_, PgRow> for StoredKey {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(StoredKey {
            channel: channel(row)?,
            endpoint: row.try_get("endpoint")?,
            external_id: external_id(row, "external_id")?,
        })
    }
}

fn channel(row: &PgRow) -> Result<Channel, sqlx::Error> {
    let text: &str = row.try_get("channel")?;
    Channel::parse(text).ok_or_else(|| unknown("channel", text))
}

/// A message id as a decoder writes it: non-blank and trimmed, exactly.
fn regular(text: &str) -> Option<ExternalId> {
    ExternalId::parse(text).filter(|id| id.as_str() == text)
}

/// A stored message id read by its key: the snapshot and the stored
/// references find messages by the batch's own ids and references, which
/// the decoders made, so a row whose id is not one (the agent desktop may
/// write others on outbound messages, but none matches) means the statement
/// and the schema disagree.
fn external_id(row: &PgRow, column: &str) -> Result<ExternalId, sqlx::Error> {
    let text: &str = row.try_get(column)?;
    regular(text).ok_or_else(|| unknown(column, text))
}

fn status(row: &PgRow) -> Result<Status, sqlx::Error> {
    let text: &str = row.try_get("status")?;
    Status::parse(text).ok_or_else(|| unknown("status", text))
}

/// A value the schema allows and this code does not know: a newer schema.
fn unknown(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode { index: column.to_owned(), source: format!("unknown value {value:?}").into() }
}
