//! Reading the dead-letter topic: a typed view of each dead letter, the
//! filters of `switchboard dead-letters`, counts per reason, a JSON form, and
//! a readable view of one record with a safe preview of its payload. Pure:
//! the caller reads the topic.

use crate::dead_letter::headers;
use crate::record::SourceRecord;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Header carrying how many times a record was redriven (absent: never).
pub(crate) const REDRIVE_COUNT: &str = "dlq_redrive_count";
/// Header naming the first dead letter's `dlq_source`, kept across redrives,
/// so every generation of one record is recognised as the same record.
pub(crate) const ORIGINAL_SOURCE: &str = "dlq_original_source";

/// One record of the dead-letter topic.
#[derive(Clone, Debug)]
pub struct Letter {
    /// The dead letter itself (its topic/partition/offset are the DLQ's).
    pub record: SourceRecord,
    pub reason: String,
    pub detail: String,
    /// `topic/partition/offset` of the record that failed.
    pub source: String,
    pub at: Option<DateTime<Utc>>,
    pub redrives: u32,
}

impl Letter {
    pub fn new(record: SourceRecord) -> Letter {
        let text = |name: &str| record.header_str(name).unwrap_or("").to_owned();
        let at = record
            .header_str(headers::AT)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let redrives = record.header_str(REDRIVE_COUNT).and_then(|n| n.trim().parse().ok()).unwrap_or(0);
        Letter {
            reason: text(headers::REASON),
            detail: text(headers::DETAIL),
            source: text(headers::SOURCE),
            at,
            redrives,
            record,
        }
    }

    /// The topic the failed record came from.
    pub(crate) fn source_topic(&self) -> &str {
        self.source.rsplitn(3, '/').nth(2).unwrap_or("")
    }

    /// The first failure's source, the same for every redrive of one record.
    pub(crate) fn original_source(&self) -> &str {
        self.record.header_str(ORIGINAL_SOURCE).unwrap_or(&self.source)
    }
}

/// What `--reason`, `--source-topic` and `--since` keep.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Any of these reasons (empty: all).
    pub reasons: Vec<String>,
    pub source_topic: Option<String>,
    /// Dead-lettered at or after.
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    pub fn keeps(&self, l: &Letter) -> bool {
        (self.reasons.is_empty() || self.reasons.contains(&l.reason))
            && self.source_topic.as_deref().is_none_or(|t| t == l.source_topic())
            && self.since.is_none_or(|since| l.at.is_some_and(|at| at >= since))
    }
}

/// Dead letters per reason code.
pub fn counts(letters: &[Letter]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for l in letters {
        *out.entry(l.reason.clone()).or_default() += 1;
    }
    out
}

/// One line per letter, as `dead-letters` prints them.
pub fn line(l: &Letter) -> String {
    let at = l.at.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let redriven = if l.redrives > 0 { format!("  (redriven {}x)", l.redrives) } else { String::new() };
    format!("{at}  {}  {}  {} bytes  {}{redriven}", l.source, l.reason, l.record.value_len(), l.detail)
}

/// The JSON object `--json` prints for a letter (one per line).
pub fn json(l: &Letter) -> serde_json::Value {
    let headers: Vec<serde_json::Value> = l
        .record
        .headers
        .iter()
        .map(|h| serde_json::json!({"key": h.key, "value": h.value.as_deref().map(|v| String::from_utf8_lossy(v).into_owned())}))
        .collect();
    serde_json::json!({
        "dlq_topic": l.record.topic,
        "dlq_partition": l.record.partition,
        "dlq_offset": l.record.offset,
        "reason": l.reason,
        "detail": l.detail,
        "source": l.source,
        "at": l.at,
        "redrives": l.redrives,
        "key": l.record.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()),
        "value_bytes": l.record.value_len(),
        "headers": headers,
        "preview": preview(l.record.value.as_deref().unwrap_or_default(), PREVIEW_BYTES),
    })
}

/// How much of a payload a person is shown.
pub(crate) const PREVIEW_BYTES: usize = 2048;

/// At most `max` bytes of `value` as printable text: control characters and
/// invalid UTF-8 are escaped, so a payload can neither garble a terminal
/// nor hide what it holds.
pub(crate) fn preview(value: &[u8], max: usize) -> String {
    let shown = &value[..value.len().min(max)];
    let mut out = String::with_capacity(shown.len());
    for chunk in shown.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' | '\t' => out.push(c),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    if value.len() > max {
        let _ = write!(out, "\n... ({} more bytes)", value.len() - max);
    }
    out
}

/// The readable view of one dead letter: where it is, why, its headers, and
/// a preview of its payload.
pub fn show(l: &Letter) -> String {
    let mut out = String::new();
    let r = &l.record;
    let _ = writeln!(out, "dead letter {}/{}/{}", r.topic, r.partition, r.offset);
    let _ = writeln!(out, "  reason:   {}", l.reason);
    let _ = writeln!(out, "  detail:   {}", l.detail);
    let _ = writeln!(out, "  source:   {}", l.source);
    let _ = writeln!(out, "  at:       {}", l.at.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()));
    let _ = writeln!(out, "  redrives: {}", l.redrives);
    let key = r.key.as_deref().map_or_else(|| "(none)".to_owned(), |k| preview(k, 256));
    let _ = writeln!(out, "  key:      {key}");
    let _ = writeln!(out, "headers:");
    for h in &r.headers {
        let value = h.value.as_deref().map_or_else(|| "(null)".to_owned(), |v| preview(v, 512));
        let _ = writeln!(out, "  {}: {value}", h.key);
    }
    let _ = writeln!(out, "payload ({} bytes):", r.value_len());
    let _ = writeln!(out, "{}", preview(r.value.as_deref().unwrap_or_default(), PREVIEW_BYTES));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::Header;

    pub(crate) fn letter(reason: &str, source: &str, at: &str, redrives: Option<&str>) -> Letter {
        let mut headers = vec![
            Header { key: "ce_type".into(), value: Some(b"fax.received".to_vec()) },
            Header { key: "dlq_reason".into(), value: Some(reason.as_bytes().to_vec()) },
            Header { key: "dlq_detail".into(), value: Some(b"why".to_vec()) },
            Header { key: "dlq_source".into(), value: Some(source.as_bytes().to_vec()) },
            Header { key: "dlq_at".into(), value: Some(at.as_bytes().to_vec()) },
        ];
        if let Some(n) = redrives {
            headers.push(Header { key: REDRIVE_COUNT.into(), value: Some(n.as_bytes().to_vec()) });
        }
        Letter::new(SourceRecord {
            topic: "inbound.dlq".into(),
            partition: 0,
            offset: 7,
            timestamp_ms: None,
            key: Some(b"k".to_vec()),
            value: Some(b"payload".to_vec()),
            headers,
        })
    }

    #[test]
    fn filters_combine_reason_source_topic_and_time() {
        let a = letter("unknown_type", "inbound.sms/0/5", "2026-11-25T10:00:00Z", None);
        let b = letter("bad_payload", "inbound.my.email/2/9", "2026-11-25T12:00:00Z", Some("2"));
        assert_eq!(b.source_topic(), "inbound.my.email");
        assert_eq!(b.redrives, 2);
        let f = Filter { reasons: vec!["bad_payload".into()], ..Filter::default() };
        assert!(!f.keeps(&a) && f.keeps(&b));
        let f = Filter { source_topic: Some("inbound.sms".into()), ..Filter::default() };
        assert!(f.keeps(&a) && !f.keeps(&b));
        let since = DateTime::parse_from_rfc3339("2026-11-25T11:00:00Z").unwrap().with_timezone(&Utc);
        let f = Filter { since: Some(since), ..Filter::default() };
        assert!(!f.keeps(&a) && f.keeps(&b));
        assert_eq!(counts(&[a.clone(), b, a])["unknown_type"], 2);
    }

    #[test]
    fn the_preview_escapes_control_bytes_and_invalid_utf8_and_is_bounded() {
        assert_eq!(preview(b"hi\x1b[31m\r\n\xff", 100), "hi\\u{001b}[31m\\r\n\\xff");
        assert_eq!(preview(b"abcdef", 3), "abc\n... (3 more bytes)");
    }

    #[test]
    fn the_view_shows_headers_and_the_payload() {
        let text = show(&letter("unknown_type", "inbound.sms/0/5", "2026-11-25T10:00:00Z", None));
        assert!(text.contains("  ce_type: fax.received\n"), "{text}");
        assert!(text.contains("payload (7 bytes):\npayload\n"), "{text}");
        let j = json(&letter("unknown_type", "inbound.sms/0/5", "2026-11-25T10:00:00Z", None));
        assert_eq!(j["reason"], "unknown_type");
        assert_eq!(j["preview"], "payload");
    }
}
