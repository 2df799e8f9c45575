//! Records for the worker's unit tests (the core's own test helpers are not
//! compiled into another crate's tests).

use crate::record::SourceRecord;

/// A record of topic `t`, partition 0, whose value is `bytes` zero bytes:
/// what the unit tests of buffers and telemetry count with.
pub(crate) fn zeros(offset: i64, bytes: usize) -> SourceRecord {
    SourceRecord {
        topic: "t".into(),
        partition: 0,
        offset,
        timestamp_ms: None,
        key: None,
        value: Some(vec![0; bytes]),
        headers: vec![],
    }
}
