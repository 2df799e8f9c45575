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
    /// Postgres refused the data itself (for example a NUL byte in text).
    RejectedByStore,
}

impl DlqReason {
    /// All reasons, for metrics and reports.
    pub const ALL: [DlqReason; 7] = [
        DlqReason::NotCloudevents,
        DlqReason::UnknownType,
        DlqReason::MissingRecipient,
        DlqReason::BadPayload,
        DlqReason::BadAddress,
        DlqReason::TooLarge,
        DlqReason::RejectedByStore,
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
    pub const REASON: &str = "dlq_reason";
    pub const DETAIL: &str = "dlq_detail";
    pub const SOURCE: &str = "dlq_source";
    pub const AT: &str = "dlq_at";
    /// Every header this module adds; a redrive strips them again.
    pub const ALL: [&str; 4] = [REASON, DETAIL, SOURCE, AT];
}

/// A record ready to publish to the dead-letter topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
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
        add(headers::DETAIL, detail);
        add(headers::SOURCE, &source);
        add(headers::AT, &at.to_rfc3339_opts(SecondsFormat::Millis, true));
        DeadLetter { key: record.key.clone(), value: record.value.clone(), headers, reason, source }
    }
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
    fn reason_codes_round_trip() {
        for r in DlqReason::ALL {
            assert_eq!(DlqReason::parse(r.code()), Some(r));
        }
    }
}
