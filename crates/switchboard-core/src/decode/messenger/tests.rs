use crate::decode::test_support::{attributes, binary, dead_letter_of, decode_err, decode_ok, fixture, structured};
use crate::decode::{Decoded, DlqReason, SkipKind};
use crate::domain::{Attachment, Channel};
use crate::record::SourceRecord;
use chrono::DateTime;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const WEBHOOK: &[u8] = fixture!("messenger/webhook.json");

const PAGE: &str = "108442971734215";
const CUSTOMER: &str = "7021553141241236";

fn event(payload: &[u8]) -> SourceRecord {
    binary("messenger.received", Some("application/json"), &[], payload)
}

fn webhook(messaging: Value) -> SourceRecord {
    let body =
        json!({ "object": "page", "entry": [{ "id": PAGE, "time": 1764065400123_i64, "messaging": messaging }] });
    event(&serde_json::to_vec(&body).unwrap())
}

fn item(extra: Value) -> Value {
    let mut item = json!({ "sender": { "id": CUSTOMER }, "recipient": { "id": PAGE }, "timestamp": 1764065399871_i64 });
    if let (Some(item), Value::Object(extra)) = (item.as_object_mut(), extra) {
        item.extend(extra);
    }
    item
}

fn fixture_decoded() -> Decoded {
    decode_ok(&event(WEBHOOK))
}

#[test]
fn a_webhook_with_two_entries_gives_its_messages_and_skips_in_payload_order() {
    let decoded = fixture_decoded();
    let ids: Vec<&str> = decoded.messages.iter().map(|m| m.external_id.as_str()).collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(
        ids[..3],
        [
            "m_AG5Hz2Uq7fQbC1xK0v9sT3nW8yL4pR6mJ2eD5aF1gH7iK9oN3qS5uW7yZ1bD3fH5jL7nP9rT",
            "m_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa",
            "m_pb_4Fq8Lr2Wz6Xc0Vb5Nm1Ks7Jd3Hg9",
        ]
    );
    assert!(ids[3].starts_with("postback:"));
    assert_eq!(
        decoded.skipped,
        [SkipKind::Echo, SkipKind::Delivery, SkipKind::Read, SkipKind::Reaction, SkipKind::named("optin")]
    );
}

#[test]
fn the_endpoint_is_the_page_and_the_contact_the_sender_whether_ids_are_strings_or_numbers() {
    for message in fixture_decoded().messages {
        assert_eq!(message.channel, Channel::Messenger);
        assert_eq!(message.endpoint.as_str(), PAGE);
        assert_eq!(message.contact.as_str(), CUSTOMER);
    }
}

#[test]
fn a_customer_message_keeps_its_text_and_its_timestamp_as_sent_at() {
    let first = &fixture_decoded().messages[0];
    assert_eq!(first.body_text, "Hi, is the blue rain jacket still in stock in size M?");
    assert_eq!(first.details.kind.as_deref(), Some("message"));
    assert_eq!(first.sent_at, DateTime::from_timestamp_millis(1_764_065_399_871));
    assert_eq!(first.in_reply_to, None);
    assert!(!first.auto_generated);
}

#[test]
fn a_reply_keeps_the_mid_it_replies_to_and_its_attachments() {
    let reply = &fixture_decoded().messages[1];
    assert_eq!(reply.in_reply_to.as_deref(), Some("m_echo_Q1w2E3r4T5y6U7i8O9p0AsDfGhJkLzXcVbNm"));
    assert_eq!(
        reply.details.attachments,
        [Attachment {
            name: None,
            content_type: Some("image".into()),
            size: None,
            url: Some(
                "https://cdn.example.net/v/t1.15752-9/rain-jacket-blue.jpg?stp=dst-jpg&oh=00_AfB1&oe=6751A2B3".into()
            ),
            title: None,
            coordinates: None,
        }]
    );
}

#[test]
fn a_postback_is_a_message_whose_text_is_the_button_title() {
    let postback = &fixture_decoded().messages[2];
    assert_eq!(postback.body_text, "Talk to a person");
    assert_eq!(postback.details.keyword.as_deref(), Some("AGENT_HANDOFF"));
    assert_eq!(postback.details.kind.as_deref(), Some("postback"));
}

#[test]
fn a_postback_without_mid_is_named_by_who_pressed_what_when() {
    let postback = &fixture_decoded().messages[3];
    let key = format!("{CUSTOMER}\n{PAGE}\n1764065541000\nTRACK_ORDER");
    assert_eq!(postback.external_id.as_str(), format!("postback:{}", hex::encode(Sha256::digest(key))));
    assert_eq!(postback.body_text, "Track my order");

    let numeric = json!({ "sender": { "id": 7021553141241236_u64 }, "recipient": { "id": 108442971734215_u64 },
        "timestamp": 1764065541000_i64, "postback": { "title": "Track my order", "payload": "TRACK_ORDER" } });
    let again = decode_ok(&webhook(json!([numeric])));
    assert_eq!(again.messages[0].external_id, postback.external_id, "numeric ids give the same id");
}

#[test]
fn a_quick_reply_payload_is_kept_as_the_keyword() {
    let record = webhook(json!([item(json!({ "message": {
        "mid": "m_qr1", "text": "Yes", "quick_reply": { "payload": "CONFIRM_RESERVATION" } } }))]));
    let decoded = decode_ok(&record);
    assert_eq!(decoded.messages[0].details.keyword.as_deref(), Some("CONFIRM_RESERVATION"));
}

#[test]
fn an_event_of_only_receipts_is_skipped_without_an_empty_batch() {
    let record = webhook(json!([
        item(json!({ "message": { "mid": "m_e", "is_echo": true, "text": "from the page" } })),
        item(json!({ "read": { "watermark": 1764065460012_i64 } })),
    ]));
    let decoded = decode_ok(&record);
    assert!(decoded.messages.is_empty());
    assert_eq!(decoded.skipped, [SkipKind::Echo, SkipKind::Read]);
}

#[test]
fn an_event_without_messaging_items_is_an_empty_batch() {
    assert_eq!(decode_ok(&webhook(json!([]))).skipped, [SkipKind::EmptyBatch]);
    let no_entries = event(br#"{"object":"page","entry":[]}"#);
    assert_eq!(decode_ok(&no_entries).skipped, [SkipKind::EmptyBatch]);
}

#[test]
fn a_webhook_for_another_object_than_a_page_is_a_bad_payload() {
    for body in [&br#"{"object":"instagram","entry":[]}"#[..], br#"{"entry":[]}"#] {
        assert_eq!(decode_err(&event(body)).reason, DlqReason::BadPayload);
    }
}

#[test]
fn a_message_without_mid_is_a_bad_payload() {
    let record = webhook(json!([item(json!({ "message": { "text": "hello?" } }))]));
    let err = dead_letter_of(&record);
    assert_eq!(err.reason, DlqReason::BadPayload);
    assert!(err.detail.contains("messaging item 0 of entry 0"), "{}", err.detail);
}

#[test]
fn a_message_without_a_sender_id_is_a_bad_address() {
    let record =
        webhook(json!([{ "recipient": { "id": PAGE }, "timestamp": 1, "message": { "mid": "m1", "text": "x" } }]));
    assert_eq!(dead_letter_of(&record).reason, DlqReason::BadAddress);
    let blank = webhook(json!([item(json!({ "sender": { "id": " " }, "message": { "mid": "m1" } }))]));
    assert_eq!(dead_letter_of(&blank).reason, DlqReason::BadAddress);
}

#[test]
fn invalid_messenger_json_is_a_bad_payload() {
    for body in [&b"{\"object\":\"page\",\"entry\":[{"[..], b"[]", b"{\"object\":\"page\",\"entry\":{}}"] {
        assert_eq!(decode_err(&event(body)).reason, DlqReason::BadPayload);
    }
}

#[test]
fn a_structured_mode_messenger_event_carries_the_webhook_as_json_data() {
    let mut cloud_event = attributes("messenger.received");
    cloud_event["datacontenttype"] = json!("application/json");
    cloud_event["data"] = serde_json::from_slice(WEBHOOK).unwrap();
    let decoded = decode_ok(&structured(cloud_event));
    // Each message's `timestamp` is its receive time, whatever the event's time.
    assert_eq!(decoded, fixture_decoded());
}

#[test]
fn entries_other_than_messaging_are_counted_under_their_own_names_beside_the_messages() {
    let item = |mid: &str| item(json!({"message": {"mid": mid, "text": "hi"}}));
    let payload = json!({"object": "page", "entry": [{
        "id": "1", "time": 1,
        "messaging": [item("m_1")],
        "standby": [item("m_2"), item("m_3")],
        "changes": {"field": "feed"},
        "uid": 42,
    }]});
    let decoded = decode_ok(&event(&serde_json::to_vec(&payload).unwrap()));
    assert_eq!(decoded.messages.len(), 1, "standby items belong to another app: not stored");
    let names: Vec<&str> = decoded.skipped.iter().map(SkipKind::as_str).collect();
    assert_eq!(names, ["changes", "standby", "standby"]);
}
