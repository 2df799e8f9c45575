//! Turns a Kafka record into decoded, normalized messages, or into the reason
//! it must be dead-lettered. Pure: no IO, no clock (the record's own timestamp
//! stands in for "now" where a payload has no date).
//!
//! Layout, in the order a record goes through it:
//!
//! - [`decode`] checks the size, then `cloudevent` reads the CloudEvents 1.0
//!   envelope (Kafka protocol binding, binary or structured mode) into an owned
//!   event;
//! - the event's `type` picks the payload decoder: `email` (`email.received`),
//!   `sms` (`sms.received`, Infobip JSON or Twilio form) or `messenger`
//!   (`messenger.received`);
//! - each decoder normalizes addresses through [`crate::domain::Address`], so
//!   nothing past this module handles a raw address string.
//!
//! Every failure is a [`DecodeError`] carrying its dead-letter reason. Decoding
//! is deterministic: the same record always decodes to the same result, which
//! is what makes a replay change nothing (contract invariant I4). Text is kept
//! exactly as sent, NUL bytes included: refusing them is the store's call
//! (`rejected_by_store`), not the decoder's.

mod cloudevent;
mod email;
mod messenger;
mod sms;

#[cfg(test)]
mod sdk_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use crate::dead_letter::DlqReason;

use crate::domain::{AddressError, InboundMessage};
use crate::record::SourceRecord;
use chrono::{DateTime, Utc};
use cloudevent::CloudEvent;

/// The CloudEvents `type` of an email accepted by one of our inboxes.
const EMAIL_RECEIVED: &str = "email.received";
/// The CloudEvents `type` of an inbound SMS webhook (Infobip or Twilio).
const SMS_RECEIVED: &str = "sms.received";
/// The CloudEvents `type` of a Messenger Platform webhook.
const MESSENGER_RECEIVED: &str = "messenger.received";

/// Why a record can't be placed; carries its dead-letter reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct DecodeError {
    /// The stable code written to the dead letter's `dlq_reason` header.
    pub reason: DlqReason,
    /// A sentence for a person, written to `dlq_detail`.
    pub detail: String,
}

impl DecodeError {
    pub(crate) fn new(reason: DlqReason, detail: impl Into<String>) -> DecodeError {
        DecodeError { reason, detail: detail.into() }
    }

    pub(crate) fn not_cloudevents(detail: impl Into<String>) -> DecodeError {
        DecodeError::new(DlqReason::NotCloudevents, detail)
    }

    pub(crate) fn bad_payload(detail: impl Into<String>) -> DecodeError {
        DecodeError::new(DlqReason::BadPayload, detail)
    }

    /// An address that normalizes to nothing; `role` says which one
    /// (`the contact (From)`, `the endpoint (To)`, ...).
    pub(crate) fn bad_address(role: &str, err: &AddressError) -> DecodeError {
        DecodeError::new(DlqReason::BadAddress, format!("The {role} is unusable: {err}."))
    }
}

/// What one record decodes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The customer messages, in payload order.
    pub messages: Vec<InboundMessage>,
    /// Messenger non-message entries and empty batches: counted, not
    /// dead-lettered. A record always yields at least one message or one skip.
    pub skipped: Vec<SkipKind>,
}

impl Decoded {
    fn one(message: InboundMessage) -> Decoded {
        Decoded { messages: vec![message], skipped: Vec::new() }
    }

    /// A batch without messages or skips still has to be accounted for
    /// (contract section 5: nothing is dropped silently), so it counts as one
    /// `EmptyBatch` skip.
    fn batch(messages: Vec<InboundMessage>, mut skipped: Vec<SkipKind>) -> Decoded {
        if messages.is_empty() && skipped.is_empty() {
            skipped.push(SkipKind::EmptyBatch);
        }
        Decoded { messages, skipped }
    }
}

/// Why part of a record was skipped rather than stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipKind {
    /// A Messenger `message` with `is_echo`: the page's own outbound message.
    Echo,
    /// A Messenger `delivery` receipt.
    Delivery,
    /// A Messenger `read` receipt.
    Read,
    /// A Messenger `reaction` to a message.
    Reaction,
    /// Any other Messenger entry: an optin, a referral, an unknown kind.
    Other,
    /// An SMS or Messenger event that carries zero messages.
    EmptyBatch,
}

impl SkipKind {
    /// A stable name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipKind::Echo => "echo",
            SkipKind::Delivery => "delivery",
            SkipKind::Read => "read",
            SkipKind::Reaction => "reaction",
            SkipKind::Other => "other",
            SkipKind::EmptyBatch => "empty_batch",
        }
    }
}

/// Decodes one record. `max_record_bytes`: larger values are `too_large`
/// (checked first, before anything is parsed). The topic plays no part: the
/// CloudEvents `type` alone says what the payload is.
pub fn decode(record: &SourceRecord, max_record_bytes: usize) -> Result<Decoded, DecodeError> {
    let size = record.value_len();
    if size > max_record_bytes {
        return Err(DecodeError::new(
            DlqReason::TooLarge,
            format!("The record value is {size} bytes, more than the limit of {max_record_bytes} bytes."),
        ));
    }
    let event = CloudEvent::from_record(record)?;
    let received_at = fallback_received_at(&event, record);
    match event.event_type.as_str() {
        EMAIL_RECEIVED => email::decode(&event, received_at).map(Decoded::one),
        SMS_RECEIVED => sms::decode(&event, received_at).map(|messages| Decoded::batch(messages, Vec::new())),
        MESSENGER_RECEIVED => {
            messenger::decode(&event, received_at).map(|(messages, skipped)| Decoded::batch(messages, skipped))
        }
        other => Err(DecodeError::new(
            DlqReason::UnknownType,
            format!(
                "Event {:?} from {:?} has type {other:?}, which Switchboard does not know.",
                event.id, event.source
            ),
        )),
    }
}

/// When the message reached us, for payloads that don't say so themselves:
/// the CloudEvents `time`, else the Kafka record timestamp, else the Unix
/// epoch. A record without any timestamp is very rare (Kafka producers always
/// set one; a negative value is Kafka's "no timestamp"), and the epoch keeps
/// decoding deterministic where reading the clock would not.
fn fallback_received_at(event: &CloudEvent, record: &SourceRecord) -> DateTime<Utc> {
    event
        .time
        .or_else(|| record.timestamp_ms.filter(|ms| *ms >= 0).and_then(DateTime::from_timestamp_millis))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The `type/subtype` of a content type, without parameters, as given.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// A JSON string or number, read as text: providers send ids and phone
/// numbers as either, and `1254459154682919` and `"1254459154682919"` mean
/// the same id (contract section 1). Numbers keep serde_json's rendering, so
/// integers come out digit for digit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
enum JsonText {
    Text(String),
    Number(serde_json::Number),
}

impl JsonText {
    fn into_string(self) -> String {
        match self {
            JsonText::Text(text) => text,
            JsonText::Number(number) => number.to_string(),
        }
    }
}

/// Lowercase hex SHA-256 of `bytes`, for ids derived from content.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
