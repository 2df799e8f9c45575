//! The CloudEvents 1.0 Kafka protocol binding, both modes, read into an owned
//! [`CloudEvent`]. Knows nothing of the payloads: it only says which bytes
//! are the payload and what the envelope claims about them.
//!
//! - Binary mode (a `ce_specversion` header is present): the attributes are
//!   `ce_*` headers, `content-type` is the `datacontenttype`, and the record
//!   value is the payload byte for byte.
//! - Structured mode (`content-type: application/cloudevents+json`, with or
//!   without parameters): the value is a JSON object holding the attributes
//!   and the payload in `data` or `data_base64`.
//! - Structured mode as real producers write it: a record without any `ce_`
//!   header whose value is a JSON object carrying `specversion`, whatever its
//!   `content-type`, and a record with no `content-type` at all (the binding
//!   says that is structured JSON). The CloudEvents Python SDK 1.x
//!   `to_structured` moves the event's `datacontenttype` into the
//!   `content-type` header, so its records say `application/json` or
//!   `message/rfc822` there; that header then stands in for the missing
//!   `datacontenttype` attribute.
//!
//! Binary mode wins when a record looks like both, as the binding specifies.

use super::{media_type, DecodeError};
use crate::record::SourceRecord;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The only CloudEvents version this worker reads.
const SPEC_VERSION: &str = "1.0";
/// The media type that marks a structured-mode record.
const STRUCTURED_MEDIA_TYPE: &str = "application/cloudevents+json";

/// One CloudEvents event, owned, with the attributes Switchboard uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloudEvent {
    /// `id`: unique per `source`; only used to name the event in details.
    pub(crate) id: String,
    /// `source`: the gateway that published the event.
    pub(crate) source: String,
    /// `type`: `email.received`, `sms.received`, `messenger.received`.
    pub(crate) event_type: String,
    /// `time`: when the gateway received the message, when it says so.
    pub(crate) time: Option<DateTime<Utc>>,
    /// `datacontenttype`: the payload's media type, parameters included.
    pub(crate) datacontenttype: Option<String>,
    /// The `recipient` extension: the inbox that accepted an email.
    pub(crate) recipient: Option<String>,
    /// The payload bytes.
    pub(crate) data: Vec<u8>,
}

impl CloudEvent {
    /// Reads the envelope of `record` in whichever mode it was published.
    pub(crate) fn from_record(record: &SourceRecord) -> Result<CloudEvent, DecodeError> {
        let Some(value) = record.value.as_deref() else {
            return Err(DecodeError::not_cloudevents("The record has no value (a tombstone), so it carries no event."));
        };
        if record.header("ce_specversion").is_some() {
            return binary(record, value);
        }
        let content_type = record.header_str("content-type");
        if content_type.is_some_and(|ct| media_type(ct).eq_ignore_ascii_case(STRUCTURED_MEDIA_TYPE)) {
            let json = serde_json::from_slice(value)
                .map_err(|e| DecodeError::bad_payload(format!("The structured-mode event is not valid JSON: {e}.")))?;
            return structured_mode(json, None);
        }
        // Not declared structured: read it as structured only when it cannot
        // be a binary-mode event and its value says it is an event. Anything
        // else (a bare provider payload, prose) is not a CloudEvent at all.
        let has_ce_header =
            record.headers.iter().any(|h| h.key.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("ce_")));
        if !has_ce_header {
            if let Ok(json @ Value::Object(_)) = serde_json::from_slice::<Value>(value) {
                if json.get("specversion").is_some() {
                    return structured_mode(json, content_type);
                }
            }
        }
        Err(DecodeError::not_cloudevents(
            "The record has no ce_specversion header (binary mode), no content type \
             application/cloudevents+json and no JSON event with a specversion as its value (structured mode).",
        ))
    }
}

/// Binary mode: attributes from the `ce_*` headers, the value as the payload.
fn binary(record: &SourceRecord, value: &[u8]) -> Result<CloudEvent, DecodeError> {
    let required = |name: &str| -> Result<String, DecodeError> {
        match record.header_str(name) {
            Some(text) if !text.trim().is_empty() => Ok(text.to_owned()),
            _ => Err(DecodeError::not_cloudevents(format!(
                "The binary-mode event has no readable {name} header, which CloudEvents requires."
            ))),
        }
    };
    check_spec_version(&required("ce_specversion")?)?;
    let time = match record.header("ce_time") {
        None => None,
        Some(raw) => Some(parse_time(std::str::from_utf8(raw).unwrap_or_default())?),
    };
    Ok(CloudEvent {
        id: required("ce_id")?,
        source: required("ce_source")?,
        event_type: required("ce_type")?,
        time,
        datacontenttype: record.header_str("content-type").map(str::to_owned),
        recipient: record.header_str("ce_recipient").map(str::to_owned),
        data: value.to_vec(),
    })
}

/// Structured mode: a JSON object with the attributes and the payload.
/// `header_content_type`: the record's `content-type` when it is the
/// payload's media type rather than the event format's (SDK 1.x records);
/// used when the event itself has no `datacontenttype`.
fn structured_mode(json: Value, header_content_type: Option<&str>) -> Result<CloudEvent, DecodeError> {
    let Value::Object(mut object) = json else {
        return Err(DecodeError::not_cloudevents("The structured-mode event is JSON but not an object."));
    };
    check_spec_version(&required_attribute(&object, "specversion")?)?;
    let time = match object.get("time") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(parse_time(text)?),
        Some(_) => return Err(DecodeError::not_cloudevents("The event's time attribute is not a string.")),
    };
    Ok(CloudEvent {
        id: required_attribute(&object, "id")?,
        source: required_attribute(&object, "source")?,
        event_type: required_attribute(&object, "type")?,
        time,
        datacontenttype: optional_attribute(&object, "datacontenttype")
            .or_else(|| header_content_type.map(str::to_owned)),
        recipient: optional_attribute(&object, "recipient"),
        data: structured_data(&mut object)?,
    })
}

/// The payload of a structured-mode event. `data_base64` carries any bytes;
/// `data` that is a JSON string carries that text (a raw email, a form
/// body); any other `data` is the JSON itself, serialized compactly.
fn structured_data(object: &mut Map<String, Value>) -> Result<Vec<u8>, DecodeError> {
    let present = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null());
    let base64 = object.remove("data_base64");
    let data = object.remove("data");
    match (present(&base64), present(&data)) {
        (true, true) => {
            Err(DecodeError::bad_payload("The event carries both data and data_base64, which CloudEvents forbids."))
        }
        (true, false) => match base64 {
            Some(Value::String(text)) => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|e| DecodeError::bad_payload(format!("The event's data_base64 is not valid base64: {e}."))),
            _ => Err(DecodeError::bad_payload("The event's data_base64 is not a string.")),
        },
        (false, true) => match data {
            Some(Value::String(text)) => Ok(text.into_bytes()),
            Some(json) => serde_json::to_vec(&json)
                .map_err(|e| DecodeError::bad_payload(format!("The event's data cannot be serialized: {e}."))),
            None => Ok(Vec::new()),
        },
        (false, false) => Ok(Vec::new()),
    }
}

fn required_attribute(object: &Map<String, Value>, name: &str) -> Result<String, DecodeError> {
    match object.get(name) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
        _ => Err(DecodeError::not_cloudevents(format!(
            "The structured-mode event has no {name} string attribute, which CloudEvents requires."
        ))),
    }
}

/// An optional string attribute; a value of another JSON type counts as absent.
fn optional_attribute(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn check_spec_version(version: &str) -> Result<(), DecodeError> {
    if version == SPEC_VERSION {
        Ok(())
    } else {
        Err(DecodeError::not_cloudevents(format!(
            "The event has specversion {version:?}; only {SPEC_VERSION:?} is supported."
        )))
    }
}

/// `time` must be RFC 3339 (CloudEvents says so); a malformed one makes the
/// envelope invalid rather than being silently replaced by another time.
fn parse_time(text: &str) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| DecodeError::not_cloudevents(format!("The event's time {text:?} is not RFC 3339: {e}.")))
}

#[cfg(test)]
mod tests;
