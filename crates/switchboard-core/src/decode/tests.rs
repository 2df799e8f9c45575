use super::test_support::{
    attributes, binary, dead_letter_of, decode_err, decode_ok, email_event, fixture, header, record, structured,
    MAX_RECORD_BYTES,
};
use super::*;
use serde_json::json;
use std::collections::HashSet;

const REPLY: &[u8] = fixture!("email/reply.eml");
const INFOBIP: &[u8] = fixture!("sms/infobip.json");

#[test]
fn a_record_larger_than_the_limit_is_too_large_before_anything_is_parsed() {
    let record = record(Vec::new(), Some(vec![b'x'; 2048]));
    let err = decode(&record, 1024).unwrap_err();
    assert_eq!(err.reason, DlqReason::TooLarge);
    assert!(err.detail.contains("2048") && err.detail.contains("1024"), "{}", err.detail);
}

#[test]
fn a_record_exactly_at_the_limit_is_decoded() {
    let record = email_event(REPLY);
    assert_eq!(decode(&record, REPLY.len()).map(|d| d.messages.len()), Ok(1));
}

#[test]
fn an_event_of_an_unknown_type_is_unknown_type_and_names_it() {
    let record = binary("email.bounced", Some("message/rfc822"), &[("ce_recipient", "support@example.net")], REPLY);
    let err = decode_err(&record);
    assert_eq!(err.reason, DlqReason::UnknownType);
    assert!(err.detail.contains("\"email.bounced\""), "{}", err.detail);
}

#[test]
fn the_type_and_not_the_topic_picks_the_decoder() {
    let mut record = binary("sms.received", Some("application/json"), &[], INFOBIP);
    record.topic = "inbound.email".to_owned();
    assert_eq!(decode_ok(&record).messages[0].channel, crate::domain::Channel::Sms);
}

#[test]
fn without_event_time_or_record_timestamp_received_at_is_the_unix_epoch() {
    let mut record = email_event(REPLY);
    record.timestamp_ms = None;
    assert_eq!(decode_ok(&record).messages[0].received_at, DateTime::UNIX_EPOCH);
    record.timestamp_ms = Some(-1);
    assert_eq!(decode_ok(&record).messages[0].received_at, DateTime::UNIX_EPOCH, "-1 is Kafka's no timestamp");
}

#[test]
fn the_error_reads_as_its_code_and_its_sentence() {
    let err = DecodeError::bad_payload("The payload is broken.");
    assert_eq!(err.to_string(), "bad_payload: The payload is broken.");
}

#[test]
fn skip_kinds_have_stable_names() {
    let kinds = [
        SkipKind::Echo,
        SkipKind::Delivery,
        SkipKind::Read,
        SkipKind::Reaction,
        SkipKind::Deleted,
        SkipKind::StatusReport,
        SkipKind::named("standby"),
        SkipKind::Other,
        SkipKind::EmptyBatch,
    ];
    let names: Vec<&str> = kinds.iter().map(SkipKind::as_str).collect();
    assert_eq!(
        names,
        ["echo", "delivery", "read", "reaction", "deleted", "status_report", "standby", "other", "empty_batch"]
    );
}

#[test]
fn a_skip_named_by_the_payload_keeps_only_names_from_the_known_list() {
    assert_eq!(SkipKind::named("pass_thread_control").as_str(), "pass_thread_control");
    assert_eq!(SkipKind::named("x1").as_str(), "other", "a new snake-case key is still unknown");
    assert_eq!(SkipKind::named("Robert'); DROP").as_str(), "other");
    assert_eq!(SkipKind::named(&"x".repeat(41)).as_str(), "other");
    assert_eq!(SkipKind::named("").as_str(), "other");
}

#[test]
fn every_decode_reason_of_the_contract_is_reachable() {
    let mut bad_base64 = attributes("email.received");
    bad_base64["recipient"] = json!("support@example.net");
    bad_base64["data_base64"] = json!("%%%");
    let cases = [
        record(vec![header("content-type", "text/plain")], Some(b"hello".to_vec())),
        binary("chat.received", None, &[], b"{}"),
        binary("email.received", None, &[], REPLY),
        binary("sms.received", Some("application/json"), &[], b"{not json"),
        structured(bad_base64),
        email_event(b""),
        binary("sms.received", Some("application/json"), &[], br#"{"results":[{"messageId":"1","from":"","to":"2"}]}"#),
        record(Vec::new(), Some(vec![0; MAX_RECORD_BYTES + 1])),
    ];
    let reasons: HashSet<DlqReason> = cases.iter().map(|r| dead_letter_of(r).reason).collect();
    let expected: HashSet<DlqReason> =
        DlqReason::ALL.into_iter().filter(|r| !matches!(r, DlqReason::RejectedByStore | DlqReason::Panicked)).collect();
    assert_eq!(reasons, expected);
}

#[test]
fn arbitrary_bytes_never_panic_in_any_mode_or_type() {
    let payloads: [&[u8]; 7] = [
        b"",
        b"\0\0\0",
        b"{",
        b"\xff\xfe\xfd",
        b"From: \r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x",
        br#"{"object":"page","entry":[{"messaging":[{"message":{"mid":null,"attachments":[{"payload":7}]}}]}]}"#,
    ];
    for ce_type in ["email.received", "sms.received", "messenger.received"] {
        for payload in payloads {
            let _ = decode(&binary(ce_type, None, &[("ce_recipient", "a@example.net")], payload), MAX_RECORD_BYTES);
            let mut event = attributes(ce_type);
            event["data"] = json!(String::from_utf8_lossy(payload));
            let _ = decode(&structured(event), MAX_RECORD_BYTES);
        }
    }
}

#[test]
fn an_infobip_batch_with_invalid_results_keeps_the_valid_ones_and_names_the_invalid_ones() {
    let payload = json!({"results": [
        {"messageId": "ok-0", "from": "385916242493", "to": "800", "text": "first"},
        {"messageId": "bad-1", "from": "", "to": "800", "text": "no sender"},
        {"messageId": "ok-2", "from": "385916242493", "to": "800", "text": "third"},
        {"messageId": 7, "from": {"not": "a number"}, "to": "800"},
    ]});
    let record = binary("sms.received", Some("application/json"), &[], payload.to_string().as_bytes());
    let decoded = decode_ok(&record);
    let ids: Vec<&str> = decoded.messages.iter().map(|m| m.external_id.as_str()).collect();
    assert_eq!(ids, ["ok-0", "ok-2"]);
    assert_eq!(decoded.invalid.len(), 2);
    let letter = decoded.dead_letter().expect("the record is dead-lettered too");
    assert_eq!(letter.reason, DlqReason::BadAddress, "the first invalid item's reason");
    assert!(letter.detail.contains("Infobip result 1"), "{}", letter.detail);
    assert!(letter.detail.contains("Infobip result 3"), "{}", letter.detail);
    assert!(letter.detail.contains("2 valid message(s) were placed"), "{}", letter.detail);
}

#[test]
fn a_messenger_webhook_with_an_invalid_item_keeps_the_valid_ones_and_names_the_invalid_one() {
    let payload = json!({"object": "page", "entry": [{"id": "1", "time": 1, "messaging": [
        {"sender": {"id": "5"}, "recipient": {"id": "1"}, "timestamp": 1, "message": {"mid": "m_ok", "text": "hi"}},
        {"sender": {"id": "5"}, "recipient": {"id": "1"}, "timestamp": 2, "message": {"text": "no mid"}},
        {"sender": {"id": "5"}, "recipient": {"id": "1"}, "timestamp": 3, "message": "not an object"},
        {"sender": {"id": "5"}, "recipient": {"id": "1"}, "timestamp": 4, "read": {"watermark": 3}},
    ]}]});
    let record = binary("messenger.received", Some("application/json"), &[], payload.to_string().as_bytes());
    let decoded = decode_ok(&record);
    assert_eq!(decoded.messages.len(), 1);
    assert_eq!(decoded.skipped, [SkipKind::Read]);
    let letter = decoded.dead_letter().expect("dead-lettered too");
    assert_eq!(letter.reason, DlqReason::BadPayload);
    assert!(letter.detail.contains("messaging item 1 of entry 0"), "{}", letter.detail);
    assert!(letter.detail.contains("messaging item 2 of entry 0"), "{}", letter.detail);
}

#[test]
fn a_batch_without_invalid_items_is_not_dead_lettered() {
    assert_eq!(decode_ok(&binary("sms.received", Some("application/json"), &[], INFOBIP)).dead_letter(), None);
}
