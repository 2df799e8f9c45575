//! Log lines about one record. Each carries the record's `topic`,
//! `partition`, `offset` and CloudEvents `ce_id` as fields, and the
//! `conversation_id` once placement has chosen one, so a person (or a log
//! pipeline filtering JSON lines) can follow one record from the broker to
//! its conversation.

use crate::dead_letter::{headers, DeadLetter};
use crate::record::SourceRecord;
use uuid::Uuid;

/// Structured-mode events are read up to this size for their id; larger
/// values are emails with attachments, not worth parsing again for a log.
const MAX_ID_SCAN: usize = 1 << 20;

/// The CloudEvents id: the `ce_id` header (binary mode) or the `id` member
/// of a structured-mode JSON value, cut to
/// [`crate::decode::bounds::MAX_ATTRIBUTE_BYTES`]: it is read from records
/// that are dead-lettered for a longer one too, and a log field must not
/// carry megabytes.
pub(crate) fn ce_id(headers: &[crate::record::Header], value: Option<&[u8]>) -> Option<String> {
    use crate::decode::bounds::{capped, MAX_ATTRIBUTE_BYTES};
    unbounded_ce_id(headers, value).map(|id| capped(id, MAX_ATTRIBUTE_BYTES))
}

fn unbounded_ce_id(headers: &[crate::record::Header], value: Option<&[u8]>) -> Option<String> {
    if let Some(h) = headers.iter().find(|h| h.key.eq_ignore_ascii_case("ce_id")) {
        return h.value.as_deref().map(|v| String::from_utf8_lossy(v).into_owned());
    }
    #[derive(serde::Deserialize)]
    struct Event {
        id: Option<serde_json::Value>,
    }
    let value = value.filter(|v| v.len() <= MAX_ID_SCAN && v.first() == Some(&b'{'))?;
    match serde_json::from_slice::<Event>(value).ok()?.id? {
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// `topic/partition/offset` split into its parts.
pub(crate) fn source_parts(source: &str) -> (&str, Option<i32>, Option<i64>) {
    let mut parts = source.rsplitn(3, '/');
    let offset = parts.next().and_then(|o| o.parse::<i64>().ok());
    let partition = parts.next().and_then(|p| p.parse::<i32>().ok());
    (parts.next().unwrap_or(""), partition, offset)
}

/// The span a retry loop runs in: its warnings then carry the partition and
/// the cause (`postgres`, `dead_letter_publish`) as fields.
pub(crate) fn retry_span(topic: &str, partition: Option<i32>, cause: &'static str) -> tracing::Span {
    tracing::warn_span!("retry", topic, partition, cause)
}

/// `Record dead-lettered.` at warn level.
pub(crate) fn dead_lettered(letter: &DeadLetter) {
    let (topic, partition, offset) = source_parts(&letter.source);
    let detail = letter
        .headers
        .iter()
        .find(|h| h.key == headers::DETAIL)
        .and_then(|h| h.value.as_deref())
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    tracing::warn!(
        topic,
        partition,
        offset,
        ce_id = ce_id(&letter.headers, letter.value.as_deref()).as_deref().unwrap_or("-"),
        reason = %letter.reason,
        detail = %detail,
        "Record dead-lettered."
    );
}

/// `Message placed.` at debug level (one line per message would drown an
/// info log under load); `conversation_id` is absent for a duplicate.
pub(crate) fn placed(record: &SourceRecord, rule: &str, conversation_id: Option<Uuid>) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    tracing::debug!(
        topic = %record.topic,
        partition = record.partition,
        offset = record.offset,
        ce_id = ce_id(&record.headers, record.value.as_deref()).as_deref().unwrap_or("-"),
        conversation_id = conversation_id.map(|c| c.to_string()).as_deref().unwrap_or("-"),
        rule,
        "Message placed."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Header;

    #[test]
    fn the_event_id_comes_from_the_header_or_the_structured_value() {
        let h = vec![Header { key: "ce_id".into(), value: Some(b"evt-1".to_vec()) }];
        assert_eq!(ce_id(&h, None).as_deref(), Some("evt-1"));
        let v = br#"{"specversion":"1.0","id":"evt-2","data":{"x":1}}"#;
        assert_eq!(ce_id(&[], Some(v)).as_deref(), Some("evt-2"));
        assert_eq!(ce_id(&[], Some(b"not json")), None);
    }

    #[test]
    fn a_huge_event_id_is_cut_to_the_attribute_bound_for_the_log() {
        let max = crate::decode::bounds::MAX_ATTRIBUTE_BYTES;
        let h = vec![Header { key: "ce_id".into(), value: Some(vec![b'i'; 1 << 20]) }];
        let logged = ce_id(&h, None).unwrap();
        assert!(logged.len() <= max && logged.ends_with('…'), "{} bytes", logged.len());
        let v = format!(r#"{{"specversion":"1.0","id":"{}"}}"#, "j".repeat(max));
        assert!(ce_id(&[], Some(v.as_bytes())).unwrap().len() <= max);
    }
}
