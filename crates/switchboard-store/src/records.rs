//! The rows the writes bind, typed: each statement takes one array of one
//! of these (`unnest($1::switchboard_new_message[])`), an element per row,
//! instead of an array per column. Each is a composite type of the schema
//! (migration `20261208000000`), whose fields Postgres checks, type by
//! type, as it receives the array; the order here is the order there.
//!
//! The fields borrow from the plan and the batch's messages: a body or raw
//! source is encoded straight from where the decoder left it.

use crate::domain::ExternalId;
use crate::placement::batch::{ConversationUpdate, EventRow, LinkRow, MergeRow, MessageRow, NewConversationRow};
use crate::placement::Status;
use crate::Item;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Declares a row struct and its encoding as the composite type `$sql`:
/// what `#[derive(sqlx::Type)]` gives a struct, without the `Decode` that
/// borrowed fields cannot have (owned ones would copy every body once more).
macro_rules! record {
    ($(#[$doc:meta])* $name:ident<$lt:lifetime> as $sql:literal, array $array:literal { $($field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        pub(crate) struct $name<$lt> {
            $(pub(crate) $field: $ty,)*
        }
        encoded_as!([$lt] $name<$lt>, $sql, $array, $($field),*);
    };
    ($(#[$doc:meta])* $name:ident as $sql:literal, array $array:literal { $($field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        pub(crate) struct $name {
            $(pub(crate) $field: $ty,)*
        }
        encoded_as!([] $name, $sql, $array, $($field),*);
    };
}

/// The three impls of [`record!`]: the type's name, its array's, and each
/// field encoded in order as a field of the record.
macro_rules! encoded_as {
    ([$($generics:tt)*] $row:ty, $sql:literal, $array:literal, $($field:ident),*) => {
        impl<$($generics)*> sqlx::Type<sqlx::Postgres> for $row {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                sqlx::postgres::PgTypeInfo::with_name($sql)
            }
        }

        impl<$($generics)*> sqlx::postgres::PgHasArrayType for $row {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                sqlx::postgres::PgTypeInfo::with_name($array)
            }
        }

        impl<$($generics)*> sqlx::Encode<'_, sqlx::Postgres> for $row {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                let mut record = sqlx::postgres::types::PgRecordEncoder::new(buf);
                $(record.encode(&self.$field)?;)*
                record.finish();
                Ok(sqlx::encode::IsNull::No)
            }
        }
    };
}

record! {
    /// A message, as `INSERT INTO messages` takes it.
    NewMessage<'a> as "switchboard_new_message", array "_switchboard_new_message" {
        id: Uuid,
        conversation_id: Uuid,
        channel: &'a str,
        endpoint: &'a str,
        contact: &'a str,
        external_id: &'a str,
        subject: Option<&'a str>,
        body_text: &'a str,
        body_html: Option<&'a str>,
        in_reply_to: Option<&'a str>,
        references: Vec<&'a str>,
        auto_generated: bool,
        sent_at: Option<DateTime<Utc>>,
        received_at: DateTime<Utc>,
        kafka_topic: &'a str,
        kafka_partition: i32,
        kafka_offset: i64,
        raw: Option<&'a [u8]>,
        details: serde_json::Value,
    }
}

impl<'a> NewMessage<'a> {
    pub(crate) fn of(item: &'a Item, row: &MessageRow) -> NewMessage<'a> {
        let m = &item.message;
        NewMessage {
            id: row.id,
            conversation_id: row.conversation_id,
            channel: m.channel.as_str(),
            endpoint: m.endpoint.as_str(),
            contact: m.contact.as_str(),
            external_id: m.external_id.as_str(),
            subject: m.subject.as_deref(),
            body_text: m.body_text.as_str(),
            body_html: m.body_html.as_deref(),
            in_reply_to: m.in_reply_to.as_ref().map(ExternalId::as_str),
            references: m.references.iter().map(ExternalId::as_str).collect(),
            auto_generated: m.auto_generated,
            sent_at: m.sent_at,
            received_at: m.received_at,
            kafka_topic: item.source.topic.as_str(),
            kafka_partition: item.source.partition,
            kafka_offset: item.source.offset,
            raw: m.raw.as_deref(),
            // Details are plain strings and numbers; serializing cannot fail.
            details: serde_json::to_value(&m.details).unwrap_or_default(),
        }
    }
}

record! {
    /// A conversation the batch starts, and its pair (`conversations` and
    /// `conversation_channels`).
    NewConversation<'a> as "switchboard_new_conversation", array "_switchboard_new_conversation" {
        id: Uuid,
        topic: &'a str,
        customer_id: Option<Uuid>,
        copy_from: Option<Uuid>,
        channel: &'a str,
        endpoint: &'a str,
        contact: &'a str,
        created_at: DateTime<Utc>,
        last_message_at: Option<DateTime<Utc>>,
    }
}

impl<'a> NewConversation<'a> {
    /// `last_message_at`: of the batch's messages placed there, the latest.
    pub(crate) fn of(row: &'a NewConversationRow, last_message_at: Option<DateTime<Utc>>) -> NewConversation<'a> {
        NewConversation {
            id: row.id,
            topic: row.topic.as_str(),
            customer_id: row.customer_id,
            copy_from: row.copy_from,
            channel: row.pair.channel.as_str(),
            endpoint: row.pair.endpoint.as_str(),
            contact: row.pair.contact.as_str(),
            created_at: row.created_at,
            last_message_at,
        }
    }
}

record! {
    /// What a customer's message changes on a stored conversation.
    ConversationChange as "switchboard_conversation_change", array "_switchboard_conversation_change" {
        id: Uuid,
        reopen: bool,
        last_message_at: DateTime<Utc>,
    }
}

impl ConversationChange {
    pub(crate) fn of(u: &ConversationUpdate) -> ConversationChange {
        ConversationChange { id: u.id, reopen: u.reopen, last_message_at: u.last_message_at }
    }
}

record! {
    /// An audit event of the plan, in `conversation_events`.
    NewEvent<'a> as "switchboard_new_event", array "_switchboard_new_event" {
        conversation_id: Uuid,
        kind: &'a str,
        from_status: Option<&'a str>,
        to_status: &'a str,
        message_id: Uuid,
        related: Option<Uuid>,
    }
}

impl NewEvent<'static> {
    pub(crate) fn of(e: &EventRow) -> NewEvent<'static> {
        NewEvent {
            conversation_id: e.conversation_id,
            kind: e.kind.as_str(),
            from_status: e.from_status.map(Status::as_str),
            to_status: e.to_status.as_str(),
            message_id: e.message_id,
            related: e.related,
        }
    }
}

record! {
    /// A link the plan wants, with the status of its `linked` event.
    NewLink<'a> as "switchboard_new_link", array "_switchboard_new_link" {
        from_id: Uuid,
        to_id: Uuid,
        kind: &'a str,
        cause: Uuid,
        status: Option<&'a str>,
        sibling: bool,
    }
}

impl NewLink<'static> {
    pub(crate) fn of(l: &LinkRow) -> NewLink<'static> {
        NewLink {
            from_id: l.from,
            to_id: l.to,
            kind: l.kind.as_str(),
            cause: l.cause,
            status: l.event.map(Status::as_str),
            sibling: l.sibling,
        }
    }
}

record! {
    /// R8: a conversation merged into its late parent's.
    LateMerge as "switchboard_late_merge", array "_switchboard_late_merge" {
        id: Uuid,
        target: Uuid,
    }
}

impl LateMerge {
    pub(crate) fn of(m: &MergeRow) -> LateMerge {
        LateMerge { id: m.from, target: m.into }
    }
}
