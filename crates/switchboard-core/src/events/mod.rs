//! Conversation events out (contract section 6): what Switchboard decided,
//! as CloudEvents 1.0 in structured JSON on `kafka.topics.events`.
//!
//! Events are written to the `event_outbox` table in the batch's own
//! transaction (the store builds them from the batch's plan), so an event
//! exists exactly when its decision committed; the worker's publisher sends
//! them in commit order and deletes them once the broker has them. This
//! module is their shape and identity only.
//! `docs/events.md` documents every field; `docs/asyncapi.yaml` and
//! `docs/schemas/` describe them for machines.

use serde::Serialize;
use uuid::Uuid;

pub mod follow;

/// The CloudEvents `source` of every event.
pub const SOURCE: &str = "switchboard";

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A conversation was started for a message (R4, R2 without a follow-up).
    ConversationCreated,
    /// A message was stored in a conversation, by the rule that placed it.
    MessagePlaced,
    /// A customer message set a waiting or solved conversation open (R5).
    ConversationReopened,
    /// A follow-up conversation was started for a reply to a closed one (R2, R4).
    ConversationFollowUpStarted,
    /// Two conversations were linked (`related` or `follow_up`).
    ConversationLinked,
    /// A conversation of replies that came first was merged into their late
    /// parent's (R8).
    ConversationMerged,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::ConversationCreated,
        EventType::MessagePlaced,
        EventType::ConversationReopened,
        EventType::ConversationFollowUpStarted,
        EventType::ConversationLinked,
        EventType::ConversationMerged,
    ];

    /// The CloudEvents `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ConversationCreated => "conversation.created",
            EventType::MessagePlaced => "message.placed",
            EventType::ConversationReopened => "conversation.reopened",
            EventType::ConversationFollowUpStarted => "conversation.follow_up_started",
            EventType::ConversationLinked => "conversation.linked",
            EventType::ConversationMerged => "conversation.merged",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// Where the message that caused an event came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SourceRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// An event's `data`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EventData {
    /// The conversation the event is about (as it was when it happened:
    /// for `conversation.merged`, the one merged away).
    pub conversation_id: Uuid,
    /// The message whose placing caused the event.
    pub message_id: Uuid,
    /// The message's pair.
    pub channel: String,
    pub endpoint: String,
    pub contact: String,
    /// The conversation's status before and after the change; `before` is
    /// null when the change made the conversation (`conversation.created`,
    /// `conversation.follow_up_started`, and `message.placed` for the
    /// message that started it).
    pub status_before: Option<String>,
    pub status_after: Option<String>,
    /// `message.placed`: the rule that placed the message (`r1_reply_ongoing`...).
    pub rule: Option<String>,
    /// The other conversation: the one linked to (`conversation.linked`),
    /// the closed one a follow-up follows (`conversation.follow_up_started`),
    /// the one merged into (`conversation.merged`).
    pub related_conversation_id: Option<Uuid>,
    /// `conversation.linked`: `related` or `follow_up`.
    pub link_kind: Option<String>,
    pub source: SourceRecord,
}

/// One event, as the outbox holds it and the topic carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: Uuid,
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339, the time the batch was written.
    pub time: String,
    /// The conversation id the record is keyed by (after merges).
    pub subject: Uuid,
    pub datacontenttype: String,
    pub data: EventData,
}

/// The namespace of event ids (a UUIDv5 per decision).
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5d1e_0a8c_3b7f_4e21_9c55_0e7a_1f2b_6d90);

/// An event's id: derived from what caused it (its type, the conversation,
/// the message and the other conversation), so the same decision always
/// has the same id and a consumer can drop repeats.
pub(crate) fn event_id(kind: EventType, conversation: Uuid, message: Uuid, related: Option<Uuid>) -> Uuid {
    let related = related.map(|r| r.to_string()).unwrap_or_default();
    let name = format!("{}/{conversation}/{message}/{related}", kind.as_str());
    Uuid::new_v5(&ID_NAMESPACE, name.as_bytes())
}

impl CloudEvent {
    pub fn new(kind: EventType, key: Uuid, time: &str, data: EventData) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".into(),
            id: event_id(kind, data.conversation_id, data.message_id, data.related_conversation_id),
            source: SOURCE.into(),
            kind: kind.as_str().into(),
            time: time.into(),
            subject: key,
            datacontenttype: "application/json".into(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_and_ids_depend_on_the_decision_only() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        let (c, m, r) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let id = event_id(EventType::ConversationLinked, c, m, Some(r));
        assert_eq!(id, event_id(EventType::ConversationLinked, c, m, Some(r)), "stable");
        assert_ne!(id, event_id(EventType::ConversationLinked, c, m, None));
        assert_ne!(id, event_id(EventType::ConversationMerged, c, m, Some(r)));
        assert_eq!(id.get_version_num(), 5);
    }
}
