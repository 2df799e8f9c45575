use super::*;
use crate::decode::test_support::{attributes, binary, header, record, structured, with_base64};
use crate::decode::DlqReason;
use crate::record::Header;
use serde_json::json;

fn read(record: &SourceRecord) -> CloudEvent {
    CloudEvent::from_record(record).unwrap_or_else(|e| panic!("expected an event, got {e}"))
}

fn reason(record: &SourceRecord) -> DlqReason {
    match CloudEvent::from_record(record) {
        Ok(event) => panic!("expected an error, got {event:?}"),
        Err(err) => err.reason,
    }
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

#[test]
fn a_binary_mode_event_takes_its_attributes_from_headers_and_its_payload_from_the_value() {
    let record = binary(
        "email.received",
        Some("message/rfc822"),
        &[("ce_time", "2026-11-24T10:14:07.5+01:00"), ("ce_recipient", "support@example.net")],
        b"From: a@example.com\r\n\r\nhi\r\n",
    );
    let event = read(&record);
    assert_eq!(event.id, "5b1c3f0e-8d2a-4f7b-9c61-2e4a8d0f1b37");
    assert_eq!(event.source, "/gateways/test");
    assert_eq!(event.event_type, "email.received");
    assert_eq!(event.time, Some(utc("2026-11-24T09:14:07.5Z")));
    assert_eq!(event.datacontenttype.as_deref(), Some("message/rfc822"));
    assert_eq!(event.recipient.as_deref(), Some("support@example.net"));
    assert_eq!(event.data, b"From: a@example.com\r\n\r\nhi\r\n");
}

#[test]
fn binary_mode_header_names_are_matched_in_any_case() {
    let record = record(
        vec![
            header("CE_SpecVersion", "1.0"),
            header("Ce_Id", "42"),
            header("ce_SOURCE", "/gw"),
            header("ce_type", "sms.received"),
            header("Content-Type", "application/json"),
        ],
        Some(b"{}".to_vec()),
    );
    let event = read(&record);
    assert_eq!((event.id.as_str(), event.datacontenttype.as_deref()), ("42", Some("application/json")));
    assert_eq!(event.time, None);
    assert_eq!(event.recipient, None);
}

#[test]
fn a_binary_mode_event_without_a_required_attribute_is_not_cloudevents() {
    for missing in ["ce_id", "ce_source", "ce_type"] {
        let mut record = binary("sms.received", None, &[], b"{}");
        record.headers.retain(|h| h.key != missing);
        assert_eq!(reason(&record), DlqReason::NotCloudevents, "without {missing}");
    }
}

#[test]
fn a_blank_or_unreadable_binary_mode_attribute_is_not_cloudevents() {
    let mut blank = binary("sms.received", None, &[], b"{}");
    blank.headers.retain(|h| h.key != "ce_id");
    blank.headers.push(header("ce_id", "  "));
    assert_eq!(reason(&blank), DlqReason::NotCloudevents);

    let mut not_utf8 = binary("sms.received", None, &[], b"{}");
    not_utf8.headers.retain(|h| h.key != "ce_source");
    not_utf8.headers.push(Header { key: "ce_source".into(), value: Some(vec![0xff, 0xfe]) });
    assert_eq!(reason(&not_utf8), DlqReason::NotCloudevents);
}

#[test]
fn a_binary_mode_event_of_another_spec_version_is_not_cloudevents() {
    let mut record = binary("sms.received", None, &[], b"{}");
    record.headers[0] = header("ce_specversion", "0.3");
    let err = CloudEvent::from_record(&record).unwrap_err();
    assert_eq!(err.reason, DlqReason::NotCloudevents);
    assert!(err.detail.contains("\"0.3\""), "{}", err.detail);
}

#[test]
fn a_binary_mode_time_that_is_not_rfc_3339_is_not_cloudevents() {
    let record = binary("sms.received", None, &[("ce_time", "24/11/2026 09:14")], b"{}");
    assert_eq!(reason(&record), DlqReason::NotCloudevents);
}

#[test]
fn binary_mode_wins_when_a_record_also_claims_structured_mode() {
    let record = binary("sms.received", Some("application/cloudevents+json"), &[], b"not json at all");
    let event = read(&record);
    assert_eq!(event.data, b"not json at all");
}

#[test]
fn a_tombstone_is_not_cloudevents() {
    let mut record = binary("sms.received", None, &[], b"");
    record.value = None;
    assert_eq!(reason(&record), DlqReason::NotCloudevents);
}

#[test]
fn a_record_in_neither_mode_is_not_cloudevents() {
    let plain = record(vec![header("content-type", "application/json")], Some(br#"{"results":[]}"#.to_vec()));
    assert_eq!(reason(&plain), DlqReason::NotCloudevents);
    let batch = record(vec![header("content-type", "application/cloudevents-batch+json")], Some(b"[]".to_vec()));
    assert_eq!(reason(&batch), DlqReason::NotCloudevents);
    let no_headers = record(Vec::new(), Some(b"hello".to_vec()));
    assert_eq!(reason(&no_headers), DlqReason::NotCloudevents);
}

#[test]
fn a_structured_mode_event_with_data_base64_carries_the_decoded_bytes() {
    let bytes = b"From: a@example.com\r\n\r\n\x00\xff binary-safe\r\n";
    let mut event = with_base64(attributes("email.received"), bytes);
    event["recipient"] = json!("support@example.net");
    event["datacontenttype"] = json!("message/rfc822");
    let event = read(&structured(event));
    assert_eq!(event.data, bytes);
    assert_eq!(event.recipient.as_deref(), Some("support@example.net"));
    assert_eq!(event.datacontenttype.as_deref(), Some("message/rfc822"));
    assert_eq!(event.time, Some(utc("2026-11-24T09:14:09.250Z")));
}

#[test]
fn structured_mode_data_that_is_a_json_string_carries_the_string_itself() {
    let mut event = attributes("sms.received");
    event["data"] = json!("MessageSid=SM1&From=%2B1212&To=%2B1415&Body=hi");
    assert_eq!(read(&structured(event)).data, b"MessageSid=SM1&From=%2B1212&To=%2B1415&Body=hi");
}

#[test]
fn structured_mode_data_that_is_a_json_object_carries_its_compact_serialization() {
    let mut event = attributes("messenger.received");
    event["data"] = json!({ "object": "page", "entry": [] });
    assert_eq!(read(&structured(event)).data, br#"{"entry":[],"object":"page"}"#);
}

#[test]
fn a_structured_mode_event_without_data_has_an_empty_payload() {
    assert_eq!(read(&structured(attributes("sms.received"))).data, b"");
}

#[test]
fn the_structured_content_type_is_matched_in_any_case_and_with_parameters() {
    let mut record = structured(attributes("sms.received"));
    record.headers = vec![header("Content-Type", "Application/CloudEvents+JSON ; charset=utf-8")];
    assert_eq!(read(&record).event_type, "sms.received");
}

#[test]
fn a_structured_mode_value_that_is_not_json_is_a_bad_payload() {
    let mut record = structured(attributes("sms.received"));
    record.value = Some(b"{\"specversion\": \"1.0\", ".to_vec());
    assert_eq!(reason(&record), DlqReason::BadPayload);
}

#[test]
fn a_structured_mode_value_that_is_json_but_not_an_object_is_not_cloudevents() {
    assert_eq!(reason(&structured(json!([attributes("sms.received")]))), DlqReason::NotCloudevents);
}

#[test]
fn a_structured_mode_event_without_a_required_attribute_is_not_cloudevents() {
    for missing in ["specversion", "id", "source", "type"] {
        let mut event = attributes("sms.received");
        event.as_object_mut().unwrap().remove(missing);
        assert_eq!(reason(&structured(event)), DlqReason::NotCloudevents, "without {missing}");
    }
    let mut numeric_id = attributes("sms.received");
    numeric_id["id"] = json!(42);
    assert_eq!(reason(&structured(numeric_id)), DlqReason::NotCloudevents);
}

#[test]
fn a_structured_mode_event_of_another_spec_version_is_not_cloudevents() {
    let mut event = attributes("sms.received");
    event["specversion"] = json!("1.1");
    assert_eq!(reason(&structured(event)), DlqReason::NotCloudevents);
}

#[test]
fn a_structured_mode_time_that_is_not_rfc_3339_is_not_cloudevents() {
    let mut event = attributes("sms.received");
    event["time"] = json!("yesterday");
    assert_eq!(reason(&structured(event.clone())), DlqReason::NotCloudevents);
    event["time"] = json!(1764000000);
    assert_eq!(reason(&structured(event)), DlqReason::NotCloudevents);
}

#[test]
fn invalid_data_base64_is_a_bad_payload() {
    let mut event = attributes("email.received");
    event["data_base64"] = json!("RnJvbTog*not base64*");
    assert_eq!(reason(&structured(event.clone())), DlqReason::BadPayload);
    event["data_base64"] = json!(["RnJvbQ=="]);
    assert_eq!(reason(&structured(event)), DlqReason::BadPayload);
}

#[test]
fn an_event_with_both_data_and_data_base64_is_a_bad_payload() {
    let mut event = with_base64(attributes("sms.received"), b"{}");
    event["data"] = json!({});
    assert_eq!(reason(&structured(event)), DlqReason::BadPayload);
}

#[test]
fn a_null_data_base64_counts_as_absent() {
    let mut event = attributes("sms.received");
    event["data_base64"] = Value::Null;
    event["data"] = json!("{}");
    assert_eq!(read(&structured(event)).data, b"{}");
}
