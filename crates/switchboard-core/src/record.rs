//! An owned copy of one Kafka record. The consumer copies each record out of
//! rdkafka's borrow into this struct first, so decoding and storing never hold
//! the consumer, and everything past the Kafka module is testable without a
//! broker.

/// One record header. Kafka allows a header without a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// One consumed Kafka record, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp in milliseconds since the epoch, when it has one.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

impl SourceRecord {
    /// The value of the first header named `name`. Header names are compared
    /// case-insensitively: gateways send `Content-Type` as often as
    /// `content-type`, and the CloudEvents names are lowercase anyway.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|h| h.key.eq_ignore_ascii_case(name)).and_then(|h| h.value.as_deref())
    }

    /// The header's value as text, when it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// `topic/partition/offset`, the form dead letters and logs name a record by.
    pub fn source(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }

    /// Size of the value in bytes (0 for a tombstone).
    pub fn value_len(&self) -> usize {
        self.value.as_ref().map_or(0, Vec::len)
    }
}
