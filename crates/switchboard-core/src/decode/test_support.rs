//! Records in both CloudEvents modes, built the way the gateways publish
//! them, for the decode tests.

use super::{decode, DecodeError, Decoded};
use crate::record::{Header, SourceRecord};
use base64::Engine as _;
use serde_json::Value;

/// The contract's default `max_record_bytes`, 10 MiB.
pub(crate) const MAX_RECORD_BYTES: usize = 10 * 1024 * 1024;

/// When the test records were produced: 2026-11-25T10:00:00Z.
pub(crate) const RECORD_TIMESTAMP_MS: i64 = 1_764_064_800_000;

/// The bytes of a file under `tests/fixtures/`.
macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/", $path)).as_slice()
    };
}
pub(crate) use fixture;

pub(crate) fn header(key: &str, value: &str) -> Header {
    Header { key: key.to_owned(), value: Some(value.as_bytes().to_vec()) }
}

/// A record on `inbound.test` with the given headers and value.
pub(crate) fn record(headers: Vec<Header>, value: Option<Vec<u8>>) -> SourceRecord {
    SourceRecord {
        topic: "inbound.test".to_owned(),
        partition: 0,
        offset: 7,
        timestamp_ms: Some(RECORD_TIMESTAMP_MS),
        key: None,
        value,
        headers,
    }
}

/// A binary-mode event: the `ce_*` headers, `content-type` when given,
/// `extra` headers, and the payload as the value.
pub(crate) fn binary(
    ce_type: &str,
    content_type: Option<&str>,
    extra: &[(&str, &str)],
    payload: &[u8],
) -> SourceRecord {
    let mut headers = vec![
        header("ce_specversion", "1.0"),
        header("ce_id", "5b1c3f0e-8d2a-4f7b-9c61-2e4a8d0f1b37"),
        header("ce_source", "/gateways/test"),
        header("ce_type", ce_type),
    ];
    headers.extend(content_type.map(|ct| header("content-type", ct)));
    headers.extend(extra.iter().map(|(k, v)| header(k, v)));
    record(headers, Some(payload.to_vec()))
}

/// An `email.received` event in binary mode, accepted by `support@example.net`.
pub(crate) fn email_event(raw: &[u8]) -> SourceRecord {
    binary("email.received", Some("message/rfc822"), &[("ce_recipient", "support@example.net")], raw)
}

/// A structured-mode event: `event` serialized as the value.
pub(crate) fn structured(event: Value) -> SourceRecord {
    let value = serde_json::to_vec(&event).expect("a JSON value serializes");
    record(vec![header("content-type", "application/cloudevents+json; charset=UTF-8")], Some(value))
}

/// The attributes of a structured-mode event of `ce_type`, without data.
pub(crate) fn attributes(ce_type: &str) -> Value {
    serde_json::json!({
        "specversion": "1.0",
        "id": "0c7e4b2a-1f3d-4e5a-8b6c-9d0e1f2a3b4c",
        "source": "/gateways/test",
        "type": ce_type,
        "time": "2026-11-24T09:14:09.250Z",
    })
}

/// `attributes` plus `data_base64` holding `payload`.
pub(crate) fn with_base64(mut event: Value, payload: &[u8]) -> Value {
    event["data_base64"] = Value::String(base64::engine::general_purpose::STANDARD.encode(payload));
    event
}

pub(crate) fn decode_ok(record: &SourceRecord) -> Decoded {
    match decode(record, MAX_RECORD_BYTES) {
        Ok(decoded) => decoded,
        Err(err) => panic!("expected the record to decode, got {err}"),
    }
}

pub(crate) fn decode_err(record: &SourceRecord) -> DecodeError {
    match decode(record, MAX_RECORD_BYTES) {
        Ok(decoded) => panic!("expected a decode error, got {decoded:?}"),
        Err(err) => err,
    }
}

/// A record written by the CloudEvents Python SDK, as committed under
/// `tests/fixtures/cloudevents/` by its `generate.py`: `NAME.value` is the
/// value byte for byte, `NAME.json` the headers and key.
pub(crate) fn sdk_record(name: &str) -> SourceRecord {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cloudevents");
    let read = |ext: &str| {
        let path = dir.join(format!("{name}.{ext}"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let meta: Value = serde_json::from_slice(&read("json")).expect("the fixture's metadata is JSON");
    let headers = meta["headers"]
        .as_array()
        .expect("headers is a list")
        .iter()
        .map(|pair| header(pair[0].as_str().expect("a header name"), pair[1].as_str().expect("a header value")))
        .collect();
    let mut record = record(headers, Some(read("value")));
    record.key = meta["key"].as_str().map(|k| k.as_bytes().to_vec());
    record
}

/// Why the worker dead-letters `record`: the decode error, or the dead
/// letter of a record some of whose items are invalid.
pub(crate) fn dead_letter_of(record: &SourceRecord) -> DecodeError {
    match decode(record, MAX_RECORD_BYTES) {
        Err(err) => err,
        Ok(decoded) => decoded.dead_letter().unwrap_or_else(|| panic!("expected a dead letter, got {decoded:?}")),
    }
}
