//! What a dead letter is: the original record plus why it could not be placed.
//! This module builds the dead-letter record; the Kafka module publishes it.
//! No IO here.

use crate::record::{Header, SourceRecord};
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt;

/// The stable reason codes of contract section 5. Operators filter and alert
/// on these strings, so they never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DlqReason {
    /// No CloudEvents attributes, a wrong `specversion`, a missing `id`, `source` or `type`.
    NotCloudevents,
    /// A `type` Switchboard does not know.
    UnknownType,
    /// An `email.received` event without the `recipient` extension.
    MissingRecipient,
    /// The payload is not what its type promises (invalid JSON, base64, MIME, fields).
    BadPayload,
    /// An endpoint or contact address that normalizes to nothing.
    BadAddress,
    /// Larger than `max_record_bytes`.
    TooLarge,
    /// Postgres refused the data itself (for example a NUL byte in text), or
    /// placing failed for it on every attempt (`docs/reliability.md`).
    RejectedByStore,
    /// Decoding or placing the record panicked on every attempt.
    Panicked,
}

impl DlqReason {
    /// All reasons, for metrics and reports.
    pub const ALL: [DlqReason; 8] = [
        DlqReason::NotCloudevents,
        DlqReason::UnknownType,
        DlqReason::MissingRecipient,
        DlqReason::BadPayload,
        DlqReason::BadAddress,
        DlqReason::TooLarge,
        DlqReason::RejectedByStore,
        DlqReason::Panicked,
    ];

    /// The code written to the `dlq_reason` header.
    pub fn code(self) -> &'static str {
        match self {
            DlqReason::NotCloudevents => "not_cloudevents",
            DlqReason::UnknownType => "unknown_type",
            DlqReason::MissingRecipient => "missing_recipient",
            DlqReason::BadPayload => "bad_payload",
            DlqReason::BadAddress => "bad_address",
            DlqReason::TooLarge => "too_large",
            DlqReason::RejectedByStore => "rejected_by_store",
            DlqReason::Panicked => "panicked",
        }
    }

    /// Parses a `dlq_reason` header value back.
    pub fn parse(code: &str) -> Option<DlqReason> {
        DlqReason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for DlqReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Header names added to a dead letter.
pub mod headers {
    /// The stable reason code.
    pub const REASON: &str = "dlq_reason";
    /// A sentence for a person.
    pub const DETAIL: &str = "dlq_detail";
    /// `topic/partition/offset` of the original record.
    pub const SOURCE: &str = "dlq_source";
    /// When, RFC 3339 in UTC.
    pub const AT: &str = "dlq_at";
    /// `true` on a dead letter that replaces one the broker refused for its
    /// size: it carries only the first bytes of the value.
    pub const TRUNCATED: &str = "dlq_truncated";
    /// On a truncated dead letter: the size of the original value.
    pub(crate) const ORIGINAL_BYTES: &str = "dlq_original_bytes";
    /// Every header this module adds; a redrive strips them again.
    pub const ALL: [&str; 6] = [REASON, DETAIL, SOURCE, AT, TRUNCATED, ORIGINAL_BYTES];
}

/// The longest `dlq_detail`, in bytes: a detail quotes errors, and an error
/// may quote the data, which the sender controls. Room for the decoder's
/// longest detail of a record (8 KiB, `decode::bounds`) and the store's
/// words beside it.
pub(crate) const MAX_DETAIL_BYTES: usize = 12 * 1024;

/// The steps by which a dead letter the broker refuses is made smaller:
/// how many bytes of the value it keeps, and whether it keeps the original
/// headers (the sender's, up to the record's size). The last step is the
/// `dlq_*` headers alone, which fits any topic a record fits.
pub const TRUNCATION_STEPS: [(usize, bool); 3] = [(64 * 1024, true), (1024, true), (0, false)];

/// A record ready to publish to the dead-letter topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The original record's key.
    pub key: Option<Vec<u8>>,
    /// The original record's value, whole (or its first bytes, truncated).
    pub value: Option<Vec<u8>>,
    /// The original headers and the `dlq_*` ones.
    pub headers: Vec<Header>,
    /// Why, as the `dlq_reason` header says it.
    pub reason: DlqReason,
    /// `topic/partition/offset` of the original.
    pub source: String,
}

impl DeadLetter {
    /// The original key, value and headers, plus the four `dlq_*` headers.
    /// `dlq_*` headers already on the record (a dead letter dead-lettered
    /// again after a redrive) are replaced, so each appears once.
    pub fn new(record: &SourceRecord, reason: DlqReason, detail: &str, at: DateTime<Utc>) -> DeadLetter {
        let source = record.source();
        let mut headers: Vec<Header> =
            record.headers.iter().filter(|h| !headers::ALL.contains(&h.key.as_str())).cloned().collect();
        let mut add = |key: &str, value: &str| {
            headers.push(Header { key: key.to_owned(), value: Some(value.as_bytes().to_vec()) })
        };
        add(headers::REASON, reason.code());
        add(headers::DETAIL, cut(detail, MAX_DETAIL_BYTES));
        add(headers::SOURCE, &source);
        add(headers::AT, &at.to_rfc3339_opts(SecondsFormat::Millis, true));
        DeadLetter { key: record.key.clone(), value: record.value.clone(), headers, reason, source }
    }

    /// A smaller stand-in for this dead letter, for a broker that refused
    /// it for its size: the first `value_bytes` bytes of the value, the
    /// original headers only when `keep_headers`, the `dlq_*` headers, and
    /// `dlq_truncated: true` with the original value's size. The key goes
    /// only with the original headers (it is the sender's too).
    pub fn truncated(&self, value_bytes: usize, keep_headers: bool) -> DeadLetter {
        // A letter truncated before keeps the size of the original value.
        let original = self
            .headers
            .iter()
            .find(|h| h.key == headers::ORIGINAL_BYTES)
            .and_then(|h| std::str::from_utf8(h.value.as_deref()?).ok()?.parse().ok())
            .unwrap_or_else(|| self.value.as_ref().map_or(0, Vec::len));
        let ours = |h: &&Header| headers::ALL.contains(&h.key.as_str());
        let mut kept: Vec<Header> = self.headers.iter().filter(|h| keep_headers || ours(h)).cloned().collect();
        kept.retain(|h| h.key != headers::TRUNCATED && h.key != headers::ORIGINAL_BYTES);
        kept.push(Header { key: headers::TRUNCATED.to_owned(), value: Some(b"true".to_vec()) });
        kept.push(Header { key: headers::ORIGINAL_BYTES.to_owned(), value: Some(original.to_string().into_bytes()) });
        DeadLetter {
            key: if keep_headers { self.key.clone() } else { None },
            value: self.value.as_ref().map(|v| v[..v.len().min(value_bytes)].to_vec()),
            headers: kept,
            reason: self.reason,
            source: self.source.clone(),
        }
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SourceRecord {
        SourceRecord {
            topic: "inbound.sms".into(),
            partition: 3,
            offset: 42,
            timestamp_ms: None,
            key: Some(b"k".to_vec()),
            value: Some(b"not json".to_vec()),
            headers: vec![
                Header { key: "ce_type".into(), value: Some(b"sms.received".to_vec()) },
                Header { key: "dlq_reason".into(), value: Some(b"too_large".to_vec()) },
            ],
        }
    }

    #[test]
    fn a_dead_letter_keeps_the_original_and_says_why() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").unwrap().with_timezone(&Utc);
        let dl = DeadLetter::new(&record(), DlqReason::BadPayload, "invalid JSON at line 1", at);
        assert_eq!(dl.value.as_deref(), Some(&b"not json"[..]));
        assert_eq!(dl.key.as_deref(), Some(&b"k"[..]));
        let find = |k: &str| {
            let found: Vec<_> = dl.headers.iter().filter(|h| h.key == k).collect();
            assert_eq!(found.len(), 1, "{k} appears once");
            String::from_utf8(found[0].value.clone().unwrap()).unwrap()
        };
        assert_eq!(find("ce_type"), "sms.received");
        assert_eq!(find("dlq_reason"), "bad_payload");
        assert_eq!(find("dlq_detail"), "invalid JSON at line 1");
        assert_eq!(find("dlq_source"), "inbound.sms/3/42");
        assert_eq!(find("dlq_at"), "2026-11-25T10:00:00.000Z");
    }

    #[test]
    fn a_truncated_dead_letter_keeps_the_reason_and_the_first_bytes() {
        let mut r = record();
        r.value = Some(vec![b'x'; 100_000]);
        let dl = DeadLetter::new(&r, DlqReason::BadPayload, "bad", Utc::now());
        let small = dl.truncated(1024, true);
        assert_eq!(small.value.as_ref().map(Vec::len), Some(1024));
        assert_eq!(small.key, dl.key);
        let get = |d: &DeadLetter, k: &str| {
            d.headers
                .iter()
                .filter(|h| h.key == k)
                .map(|h| String::from_utf8(h.value.clone().unwrap()).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(get(&small, "dlq_truncated"), ["true"]);
        assert_eq!(get(&small, "dlq_original_bytes"), ["100000"]);
        assert_eq!(get(&small, "dlq_reason"), ["bad_payload"]);
        assert_eq!(get(&small, "ce_type"), ["sms.received"]);
        // Truncating a truncated letter again does not repeat its headers.
        let smallest = small.truncated(0, false);
        assert_eq!(smallest.value.as_ref().map(Vec::len), Some(0));
        assert!(smallest.key.is_none());
        assert!(get(&smallest, "ce_type").is_empty(), "the sender's headers go at the last step");
        assert_eq!(get(&smallest, "dlq_truncated"), ["true"]);
        assert_eq!(get(&smallest, "dlq_original_bytes"), ["100000"], "the original's size, not the letter's");
        assert_eq!(get(&smallest, "dlq_source"), ["inbound.sms/3/42"]);
    }

    #[test]
    fn a_detail_is_cut_at_its_bound_on_a_character_boundary() {
        let long = "é".repeat(MAX_DETAIL_BYTES);
        let dl = DeadLetter::new(&record(), DlqReason::RejectedByStore, &long, Utc::now());
        let detail = dl.headers.iter().find(|h| h.key == "dlq_detail").unwrap().value.clone().unwrap();
        assert!(detail.len() <= MAX_DETAIL_BYTES && detail.len() >= MAX_DETAIL_BYTES - 1, "{}", detail.len());
        assert!(String::from_utf8(detail).is_ok());
        let exact = "a".repeat(MAX_DETAIL_BYTES);
        let dl = DeadLetter::new(&record(), DlqReason::RejectedByStore, &exact, Utc::now());
        assert!(dl.headers.iter().any(|h| h.value.as_deref() == Some(exact.as_bytes())), "at the bound: kept whole");
    }

    #[test]
    fn reason_codes_round_trip() {
        for r in DlqReason::ALL {
            assert_eq!(DlqReason::parse(r.code()), Some(r));
        }
    }
}
