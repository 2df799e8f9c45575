//! Records as the official CloudEvents Python SDK writes them (contract
//! section 1): both APIs of cloudevents 2.2.0, both modes. The fixtures are
//! the SDK's own output (`tests/fixtures/cloudevents/generate.py`).

use super::test_support::{decode_err, decode_ok, header, record, sdk_record};
use super::*;
use crate::domain::Channel;

/// (fixture, channel, external id, endpoint, contact, start of the body)
const CASES: [(&str, Channel, &str, &str, &str, &str); 10] = [
    (
        "v1_binary_email",
        Channel::Email,
        "sdk-lamp-1@mail.example.com",
        "support@acme.example",
        "ana.horvat@example.com",
        "Hello, the lamp",
    ),
    (
        "v1_structured_email",
        Channel::Email,
        "sdk-lamp-2@mail.example.com",
        "support@acme.example",
        "ana.horvat@example.com",
        "Hello, the lamp",
    ),
    ("v1_binary_infobip", Channel::Sms, "sdk-ib-1", "800100200", "385916242493", "Where is parcel"),
    ("v1_structured_infobip", Channel::Sms, "sdk-ib-2", "800100200", "385916242493", "Where is parcel"),
    ("v1_structured_twilio", Channel::Sms, "SMsdk0001", "18005550199", "14155550123", "Is the store open"),
    ("v1_structured_messenger_no_content_type", Channel::Messenger, "m_sdk_1", "104729", "6178123", "Do you ship"),
    (
        "core_binary_email",
        Channel::Email,
        "sdk-lamp-3@mail.example.com",
        "support@acme.example",
        "ana.horvat@example.com",
        "Hello, the lamp",
    ),
    (
        "core_structured_email",
        Channel::Email,
        "sdk-lamp-4@mail.example.com",
        "support@acme.example",
        "ana.horvat@example.com",
        "Hello, the lamp",
    ),
    ("core_binary_messenger", Channel::Messenger, "m_sdk_2", "104729", "6178123", "Do you ship"),
    ("core_structured_infobip", Channel::Sms, "sdk-ib-3", "800100200", "385916242493", "Where is parcel"),
];

#[test]
fn every_record_the_sdk_writes_decodes_to_its_message() {
    for (name, channel, id, endpoint, contact, body) in CASES {
        let decoded = decode_ok(&sdk_record(name));
        assert_eq!(decoded.messages.len(), 1, "{name}");
        let m = &decoded.messages[0];
        assert_eq!(m.channel, channel, "{name}");
        assert_eq!(m.external_id.as_str(), id, "{name}");
        assert_eq!((m.endpoint.as_str(), m.contact.as_str()), (endpoint, contact), "{name}");
        assert!(m.body_text.starts_with(body), "{name}: {:?}", m.body_text);
    }
}

#[test]
fn the_sdk_1x_structured_record_with_the_payload_type_as_content_type_is_structured() {
    let record = sdk_record("v1_structured_infobip");
    assert_eq!(record.header_str("content-type"), Some("application/json"), "what the SDK 1.x writes");
    let event = cloudevent::CloudEvent::from_record(&record).expect("read as structured");
    assert_eq!(event.id, "sdk-v1-str-sms");
    // The header stands in for the datacontenttype the SDK moved out of the event.
    assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
    assert!(String::from_utf8_lossy(&event.data).contains(r#""messageId":"sdk-ib-2""#));
}

#[test]
fn a_record_without_content_type_is_structured_json() {
    let event = cloudevent::CloudEvent::from_record(&sdk_record("v1_structured_messenger_no_content_type")).unwrap();
    assert_eq!(event.event_type, "messenger.received");
    assert_eq!(event.datacontenttype, None);
}

#[test]
fn the_sdk_1x_structured_email_carries_its_raw_bytes_and_recipient() {
    let m = &decode_ok(&sdk_record("v1_structured_email")).messages[0];
    assert!(m.body_text.contains("Što sad da radim?"), "{:?}", m.body_text);
    assert!(m.raw.as_deref().is_some_and(|raw| raw.starts_with(b"From: Ana Horvat")));
}

#[test]
fn a_json_value_with_specversion_is_not_structured_when_the_record_has_ce_headers() {
    // A broken binary event (no ce_specversion) is not rescued by its payload.
    let value = br#"{"specversion":"1.0","id":"x","source":"/s","type":"sms.received","data":{"results":[]}}"#;
    let r = record(vec![header("ce_type", "sms.received")], Some(value.to_vec()));
    assert_eq!(decode_err(&r).reason, DlqReason::NotCloudevents);
}

#[test]
fn a_json_value_without_specversion_and_without_ce_headers_is_not_cloudevents() {
    let r = record(Vec::new(), Some(br#"{"results":[]}"#.to_vec()));
    assert_eq!(decode_err(&r).reason, DlqReason::NotCloudevents);
}
