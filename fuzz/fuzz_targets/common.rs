//! Records built the way the worker receives them, for the fuzz targets.

use switchboard::decode::decode;
use switchboard::record::{Header, SourceRecord};

pub fn header(key: &str, value: &[u8]) -> Header {
    Header { key: key.to_owned(), value: Some(value.to_vec()) }
}

/// Decodes `value` under `headers`; any outcome is fine, a panic is the bug.
pub fn decode_record(headers: Vec<Header>, value: &[u8]) {
    let record = SourceRecord {
        topic: "fuzz".into(),
        partition: 0,
        offset: 0,
        timestamp_ms: Some(0),
        key: None,
        value: Some(value.to_vec()),
        headers,
    };
    let _ = decode(&record, 10 * 1024 * 1024);
}

/// A binary-mode event of `ce_type` whose value is the fuzz input.
// Each target includes this file as its own module; the envelope target
// builds its headers itself and leaves this one unused.
#[allow(dead_code)]
pub fn decode_binary(ce_type: &str, content_type: &[u8], extensions: &[(&str, &[u8])], value: &[u8]) {
    let mut headers = vec![
        header("ce_specversion", b"1.0"),
        header("ce_id", b"fuzz-1"),
        header("ce_source", b"/fuzz"),
        header("ce_type", ce_type.as_bytes()),
        header("ce_time", b"2026-11-25T09:00:00Z"),
        header("content-type", content_type),
    ];
    headers.extend(extensions.iter().map(|(k, v)| header(&format!("ce_{k}"), v)));
    decode_record(headers, value);
}
