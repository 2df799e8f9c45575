use crate::decode::test_support::{
    attributes, binary, dead_letter_of, decode_err, decode_ok, fixture, structured, RECORD_TIMESTAMP_MS,
};
use crate::decode::{DlqReason, SkipKind};
use crate::domain::{Attachment, Channel, InboundMessage};
use crate::record::SourceRecord;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const INFOBIP: &[u8] = fixture!("sms/infobip.json");
const TWILIO: &[u8] = fixture!("sms/twilio.txt");

fn infobip_event(payload: &[u8]) -> SourceRecord {
    binary("sms.received", Some("application/json"), &[], payload)
}

fn twilio_event(payload: &[u8]) -> SourceRecord {
    binary("sms.received", Some("application/x-www-form-urlencoded"), &[], payload)
}

fn infobip_results(results: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "results": results, "messageCount": 1, "pendingMessageCount": 0 })).unwrap()
}

fn one_result(result: Value) -> SourceRecord {
    infobip_event(&infobip_results(json!([result])))
}

fn messages(record: &SourceRecord) -> Vec<InboundMessage> {
    let decoded = decode_ok(record);
    assert!(decoded.skipped.is_empty(), "{:?}", decoded.skipped);
    decoded.messages
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

#[test]
fn an_infobip_batch_with_two_results_gives_two_messages_in_order() {
    let messages = messages(&infobip_event(INFOBIP));
    let ids: Vec<&str> = messages.iter().map(|m| m.external_id.as_str()).collect();
    assert_eq!(ids, ["817790313235066447", "817790313235066448"]);
    let [first, second] = &messages[..] else { panic!("two messages") };
    assert_eq!(first.channel, Channel::Sms);
    assert_eq!(first.contact.as_str(), "385916242493", "a numeric from is read as its digits");
    assert_eq!(first.endpoint.as_str(), "385912000100", "a numeric to is read as its digits");
    assert_eq!(second.contact.as_str(), "385981234567");
    assert_eq!(first.body_text, "STATUS 55-1093 where is my order?");
    assert_eq!(first.details.keyword.as_deref(), Some("STATUS"));
    assert_eq!(second.details.keyword, None, "an empty keyword is no keyword");
    assert_eq!((first.details.sms_count, second.details.sms_count), (Some(1), Some(2)));
    assert_eq!(first.received_at, utc("2026-11-24T09:14:07Z"));
    assert_eq!(second.received_at, utc("2026-11-24T08:15:42.513Z"));
    assert_eq!((first.subject.as_ref(), first.raw.as_ref(), first.auto_generated), (None, None, false));
}

#[test]
fn the_four_spellings_of_one_number_are_one_contact() {
    let spellings = ["(800) 100-20000", "800-100-20000", "80010020000", "(800)-100-20000"];
    let results: Vec<Value> = spellings
        .iter()
        .enumerate()
        .map(
            |(i, from)| json!({ "messageId": format!("ib-{i}"), "from": from, "to": "+385 91 200 0100", "text": "hi" }),
        )
        .collect();
    let messages = messages(&infobip_event(&infobip_results(Value::Array(results))));
    assert_eq!(messages.len(), 4);
    for message in &messages {
        assert_eq!(message.contact.as_str(), "80010020000");
        assert_eq!(message.endpoint.as_str(), "385912000100");
    }
}

#[test]
fn an_infobip_result_without_text_falls_back_to_clean_text_then_to_nothing() {
    let clean = one_result(json!({ "messageId": "a", "from": "1", "to": "2", "cleanText": "only clean" }));
    assert_eq!(messages(&clean)[0].body_text, "only clean");
    let bare = one_result(json!({ "messageId": 7, "from": "1", "to": "2" }));
    let message = &messages(&bare)[0];
    assert_eq!(message.body_text, "");
    assert_eq!(message.external_id.as_str(), "7", "a numeric messageId is read as its digits");
}

#[test]
fn infobip_received_at_may_be_rfc_3339_and_falls_back_to_the_event_time() {
    let rfc3339 =
        one_result(json!({ "messageId": "a", "from": "1", "to": "2", "receivedAt": "2026-11-24T09:14:07+01:00" }));
    assert_eq!(messages(&rfc3339)[0].received_at, utc("2026-11-24T08:14:07Z"));
    let without = one_result(json!({ "messageId": "a", "from": "1", "to": "2" }));
    assert_eq!(messages(&without)[0].received_at.timestamp_millis(), RECORD_TIMESTAMP_MS);
}

#[test]
fn an_unreadable_infobip_received_at_is_a_bad_payload() {
    let record = one_result(json!({ "messageId": "a", "from": "1", "to": "2", "receivedAt": "9.11.2019 16:00" }));
    assert_eq!(dead_letter_of(&record).reason, DlqReason::BadPayload);
}

#[test]
fn an_infobip_batch_without_results_is_an_empty_batch() {
    let decoded = decode_ok(&infobip_event(&infobip_results(json!([]))));
    assert!(decoded.messages.is_empty());
    assert_eq!(decoded.skipped, [SkipKind::EmptyBatch]);
}

#[test]
fn an_infobip_result_without_message_id_is_a_bad_payload() {
    for id in [Value::Null, json!(""), json!("  ")] {
        let record = one_result(json!({ "messageId": id, "from": "1", "to": "2" }));
        assert_eq!(dead_letter_of(&record).reason, DlqReason::BadPayload, "messageId {id}");
    }
}

#[test]
fn an_infobip_number_without_digits_is_a_bad_address() {
    let no_from = one_result(json!({ "messageId": "a", "from": "", "to": "385912000100" }));
    assert_eq!(dead_letter_of(&no_from).reason, DlqReason::BadAddress);
    let letters = one_result(json!({ "messageId": "a", "from": "385916242493", "to": "InfoSMS" }));
    assert_eq!(dead_letter_of(&letters).reason, DlqReason::BadAddress);
}

#[test]
fn invalid_infobip_json_is_a_bad_payload() {
    for payload in [&b"{\"results\": [{\"messageId\": "[..], b"{\"results\": 5}", b"{}", b"{\"results\":[]}\xff"] {
        assert_eq!(decode_err(&infobip_event(payload)).reason, DlqReason::BadPayload);
    }
}

#[test]
fn a_twilio_webhook_with_media_gives_one_message_with_its_attachments() {
    let messages = messages(&twilio_event(TWILIO));
    let [message] = &messages[..] else { panic!("one message") };
    assert_eq!(message.external_id.as_str(), "MM5f2c8a1d9e3b47a6b0c1d2e3f4a5b6c7");
    assert_eq!(message.contact.as_str(), "12125550123");
    assert_eq!(message.endpoint.as_str(), "14155550100");
    assert_eq!(message.body_text, "Here's the receipt and a photo of the damaged box \u{1f4e6}");
    assert_eq!(message.details.sms_count, Some(1));
    let media = "https://media.example.net/2010-04-01/Accounts/AC00112233445566778899aabbccddeeff/Messages/\
                 MM5f2c8a1d9e3b47a6b0c1d2e3f4a5b6c7/Media/";
    assert_eq!(
        message.details.attachments,
        [
            Attachment {
                name: None,
                content_type: Some("image/jpeg".into()),
                size: None,
                url: Some(format!("{media}ME11aa22bb33cc44dd55ee66ff77889900")),
                title: None,
                coordinates: None,
            },
            Attachment {
                name: None,
                content_type: Some("application/pdf".into()),
                size: None,
                url: Some(format!("{media}ME99ff88ee77dd66cc55bb44aa33221100")),
                title: None,
                coordinates: None,
            },
        ]
    );
    assert_eq!(message.received_at.timestamp_millis(), RECORD_TIMESTAMP_MS);
}

#[test]
fn a_twilio_num_media_larger_than_the_media_sent_lists_only_what_is_there() {
    let body = b"MessageSid=SM1&From=%2B12125550123&To=%2B14155550100&Body=hi&NumMedia=4000000000\
                 &MediaUrl0=https%3A%2F%2Fmedia.example.net%2Fa.jpg";
    let messages = messages(&twilio_event(body));
    assert_eq!(messages[0].details.attachments.len(), 1);
}

#[test]
fn a_twilio_webhook_without_message_sid_is_a_bad_payload() {
    let record = twilio_event(b"SmsSid=SM1&From=%2B12125550123&To=%2B14155550100&Body=hi");
    assert_eq!(decode_err(&record).reason, DlqReason::BadPayload);
}

#[test]
fn a_twilio_body_that_is_not_utf8_is_a_bad_payload() {
    let record = twilio_event(b"MessageSid=SM1&From=%2B12125550123&To=%2B14155550100&Body=\xff\xfe");
    assert_eq!(decode_err(&record).reason, DlqReason::BadPayload);
}

#[test]
fn a_twilio_sender_without_digits_is_a_bad_address() {
    let record = twilio_event(b"MessageSid=SM1&From=&To=%2B14155550100&Body=hi");
    assert_eq!(decode_err(&record).reason, DlqReason::BadAddress);
}

#[test]
fn without_a_content_type_the_payload_is_sniffed() {
    let json = binary("sms.received", None, &[], &[b"\r\n  ", INFOBIP].concat());
    assert_eq!(messages(&json).len(), 2);
    let form = binary("sms.received", None, &[], TWILIO);
    assert_eq!(messages(&form)[0].external_id.as_str(), "MM5f2c8a1d9e3b47a6b0c1d2e3f4a5b6c7");
}

#[test]
fn content_type_parameters_and_case_do_not_matter() {
    let record = binary("sms.received", Some("Application/JSON; charset=utf-8"), &[], INFOBIP);
    assert_eq!(messages(&record).len(), 2);
}

#[test]
fn an_sms_payload_of_another_content_type_is_a_bad_payload() {
    let record = binary("sms.received", Some("text/plain"), &[], b"hello");
    let err = decode_err(&record);
    assert_eq!(err.reason, DlqReason::BadPayload);
    assert!(err.detail.contains("text/plain"), "{}", err.detail);
}

#[test]
fn a_structured_mode_infobip_event_carries_the_batch_as_json_data() {
    let mut event = attributes("sms.received");
    event["datacontenttype"] = json!("application/json");
    event["data"] = serde_json::from_slice(INFOBIP).unwrap();
    let messages = messages(&structured(event));
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].received_at, utc("2026-11-24T09:14:07Z"), "receivedAt wins over the event time");
}

#[test]
fn a_structured_mode_twilio_event_carries_the_form_as_a_string() {
    let mut event = attributes("sms.received");
    event["datacontenttype"] = json!("application/x-www-form-urlencoded");
    event["data"] = json!(std::str::from_utf8(TWILIO).unwrap());
    let messages = messages(&structured(event));
    assert_eq!(messages[0].contact.as_str(), "12125550123");
    assert_eq!(messages[0].received_at, utc("2026-11-24T09:14:09.250Z"), "the event time");
}
