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
//!   (`messenger.received`); `email` reads message ids through `msgid`;
//! - each decoder normalizes addresses through [`crate::domain::Address`], so
//!   nothing past this module handles a raw address string;
//! - `nul` cleans U+0000 out of every decoded message;
//! - [`bounds`] names the bound of everything a sender controls and checks
//!   the envelope first and every message last (contract section 5,
//!   bounded inputs); `skip` names skipped items from a closed set, since
//!   those names become metric labels.
//!
//! Every failure is a [`DecodeError`] carrying its dead-letter reason. A
//! multi-message record (Infobip batch, Messenger webhook) is read item by
//! item: its invalid items are listed in [`Decoded::invalid`] beside the
//! valid messages instead of failing the whole record. Decoding
//! is deterministic: the same record always decodes to the same result, which
//! is what makes a replay change nothing (contract invariant I4). Text is kept
//! as sent except for U+0000, which Postgres cannot store: `nul` removes it
//! and says so in the message's details.

pub mod bounds;
mod cloudevent;
mod email;
mod messenger;
mod msgid;
mod nul;
#[cfg(test)]
mod provider_fixtures;
mod skip;
mod sms;

#[cfg(test)]
mod sdk_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use crate::dead_letter::DlqReason;
pub use skip::{SkipKind, KNOWN_NAMES as KNOWN_SKIP_NAMES};

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
    /// The detail is cut to [`bounds::MAX_DETAIL_BYTES`]: details quote
    /// input, and travel as a Kafka header and a log field.
    pub(crate) fn new(reason: DlqReason, detail: impl Into<String>) -> DecodeError {
        DecodeError { reason, detail: bounds::capped(detail.into(), bounds::MAX_DETAIL_BYTES) }
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
    /// Items that are not customer messages (Messenger receipts and other
    /// entries, provider status reports) and empty batches: counted, not
    /// dead-lettered. A record always yields at least one message, one skip
    /// or one invalid item.
    pub skipped: Vec<SkipKind>,
    /// Items of a multi-message record (an Infobip batch, a Messenger
    /// webhook) that cannot be read, in payload order. The valid messages
    /// are placed all the same; the record is then dead-lettered whole
    /// (contract section 5), see [`Decoded::dead_letter`].
    pub invalid: Vec<DecodeError>,
}

impl Decoded {
    fn one(message: InboundMessage) -> Decoded {
        Decoded { messages: vec![message], skipped: Vec::new(), invalid: Vec::new() }
    }

    /// A batch without messages, skips or invalid items still has to be
    /// accounted for (contract section 5: nothing is dropped silently), so
    /// it counts as one `EmptyBatch` skip.
    fn batch(messages: Vec<InboundMessage>, mut skipped: Vec<SkipKind>, invalid: Vec<DecodeError>) -> Decoded {
        if messages.is_empty() && skipped.is_empty() && invalid.is_empty() {
            skipped.push(SkipKind::EmptyBatch);
        }
        Decoded { messages, skipped, invalid }
    }

    /// Why the record must also be dead-lettered, when some of its items are
    /// invalid: the first invalid item's reason, and a detail naming every
    /// invalid item and saying the others were placed.
    pub fn dead_letter(&self) -> Option<DecodeError> {
        let first = self.invalid.first()?;
        let placed = self.messages.len();
        let mut detail = format!(
            "{} item(s) of this record cannot be read and were not placed; its {placed} valid message(s) were \
             placed, so a redrive finds them as duplicates.",
            self.invalid.len(),
        );
        // Name the invalid items while the detail stays within its bound
        // (a batch may hold a thousand of them), then say how many are left.
        for (named, item) in self.invalid.iter().enumerate() {
            if detail.len() + 1 + item.detail.len() > bounds::MAX_RECORD_DETAIL_BYTES - 64 {
                detail.push_str(&format!(" And {} more.", self.invalid.len() - named));
                break;
            }
            detail.push(' ');
            detail.push_str(&item.detail);
        }
        Some(DecodeError { reason: first.reason, detail })
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
    bounds::check_headers(record)?;
    let event = CloudEvent::from_record(record).and_then(bounds::check_attributes)?;
    let received_at = fallback_received_at(&event, record);
    let decoded = match event.event_type.as_str() {
        EMAIL_RECEIVED => email::decode(&event, received_at).map(Decoded::one),
        SMS_RECEIVED => sms::decode(&event, received_at).map(Items::into_decoded),
        MESSENGER_RECEIVED => messenger::decode(&event, received_at).map(Items::into_decoded),
        other => Err(DecodeError::new(
            DlqReason::UnknownType,
            format!(
                "Event {:?} from {:?} has type {other:?}, which Switchboard does not know.",
                event.id, event.source
            ),
        )),
    }?;
    bounds::within_bounds(without_nul(decoded)?)
}

/// Cleans U+0000 out of every message ([`nul::remove_nul`]). A message
/// left without an address is invalid: a single message fails the record,
/// one of a batch becomes an invalid item.
fn without_nul(decoded: Decoded) -> Result<Decoded, DecodeError> {
    let single = decoded.messages.len() == 1 && decoded.skipped.is_empty() && decoded.invalid.is_empty();
    let mut invalid = decoded.invalid;
    let mut messages = Vec::with_capacity(decoded.messages.len());
    for message in decoded.messages {
        match nul::remove_nul(message) {
            Ok(message) => messages.push(message),
            Err(e) if single => return Err(e),
            Err(e) => invalid.push(e),
        }
    }
    Ok(Decoded::batch(messages, decoded.skipped, invalid))
}

/// What a decoder of a multi-message payload found, item by item.
#[derive(Debug, Default)]
struct Items {
    messages: Vec<InboundMessage>,
    skipped: Vec<SkipKind>,
    invalid: Vec<DecodeError>,
}

impl Items {
    /// Files one item's outcome.
    fn push(&mut self, item: Result<Item, DecodeError>) {
        match item {
            Ok(Item::Message(message)) => self.messages.push(*message),
            Ok(Item::Skip(kind)) => self.skipped.push(kind),
            Err(e) => self.invalid.push(e),
        }
    }

    fn into_decoded(self) -> Decoded {
        Decoded::batch(self.messages, self.skipped, self.invalid)
    }
}

/// What one item of a multi-message payload turned out to be. The message
/// is boxed to keep the skip variant small.
enum Item {
    Message(Box<InboundMessage>),
    Skip(SkipKind),
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
