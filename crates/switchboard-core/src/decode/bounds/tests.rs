//! Each bound of `decode::bounds` at its number and one past it, for the
//! envelope, the batch payloads and the label sets (the email's own bounds
//! are tested in `email::bounds_tests`).

use super::*;
use crate::decode::test_support::{attributes, binary, dead_letter_of, decode_err, decode_ok, header, structured};
use crate::decode::{SkipKind, KNOWN_SKIP_NAMES};
use serde_json::{json, Value};

fn infobip(results: Vec<Value>) -> SourceRecord {
    let body = json!({ "results": results, "messageCount": results.len() });
    binary("sms.received", Some("application/json"), &[], body.to_string().as_bytes())
}

fn sms(id: &str, from: &str) -> Value {
    json!({ "messageId": id, "from": from, "to": "385800", "text": "hi", "receivedAt": "2026-11-25T07:00:00.000+0000" })
}

fn messenger(entry: Value) -> SourceRecord {
    let body = json!({ "object": "page", "entry": [entry] });
    binary("messenger.received", Some("application/json"), &[], body.to_string().as_bytes())
}

fn messenger_item(event: Value) -> Value {
    let mut item = json!({ "sender": { "id": "7021" }, "recipient": { "id": "1084" }, "timestamp": 1764065399871_i64 });
    item.as_object_mut().unwrap().extend(event.as_object().unwrap().clone());
    item
}

fn message_items(count: usize) -> Vec<Value> {
    (0..count).map(|n| messenger_item(json!({ "message": { "mid": format!("m_{n}"), "text": "hi" } }))).collect()
}

fn as_refs(extra: &[(String, String)]) -> Vec<(&str, &str)> {
    extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn assert_too_large(err: &DecodeError, bound: &str) {
    assert_eq!(err.reason, DlqReason::TooLarge, "{err}");
    assert!(err.detail.contains(&format!("more than the bound of {bound}")), "{err}");
}

#[test]
fn an_infobip_batch_of_a_thousand_results_is_placed_and_one_more_dead_letters_it_whole() {
    let results = |n: usize| (0..n).map(|i| sms(&format!("ib-{i}"), &format!("3859100{i}"))).collect::<Vec<_>>();
    assert_eq!(decode_ok(&infobip(results(MAX_ITEMS))).messages.len(), 1000);
    let err = decode_err(&infobip(results(MAX_ITEMS + 1)));
    assert_too_large(&err, "1000 items per record");
    assert!(
        err.detail.starts_with("The Infobip batch carries 1001 items")
            && err.detail.ends_with("none of them was placed.")
    );
}

#[test]
fn a_messenger_webhook_of_a_thousand_items_is_placed_and_one_more_dead_letters_it_whole() {
    let at_bound = messenger(json!({ "id": "1084", "time": 1, "messaging": message_items(MAX_ITEMS) }));
    assert_eq!(decode_ok(&at_bound).messages.len(), 1000);
    let past = messenger(json!({ "id": "1084", "time": 1, "messaging": message_items(MAX_ITEMS + 1) }));
    assert_too_large(&decode_err(&past), "1000 items per record");
    // Standby items and other entries count with the messaging items.
    let mixed = messenger(json!({ "messaging": message_items(MAX_ITEMS - 1), "standby": [{}], "optin": {} }));
    assert!(decode_err(&mixed).detail.contains("carries 1001 items"));
}

#[test]
fn a_record_of_sixty_four_headers_is_read_and_one_more_is_too_large() {
    // `binary` writes five headers (four ce_ and content-type).
    let extra: Vec<(String, String)> = (0..MAX_HEADERS - 5).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let body = json!({ "results": [sms("h-1", "385911")] }).to_string();
    let record = |extra: &[(&str, &str)]| binary("sms.received", Some("application/json"), extra, body.as_bytes());
    assert_eq!(decode_ok(&record(&as_refs(&extra))).messages.len(), 1);
    let mut more = extra.clone();
    more.push(("x-one-more".into(), "v".into()));
    assert_too_large(&decode_err(&record(&as_refs(&more))), "64 headers");
}

#[test]
fn headers_of_sixty_four_kib_in_all_are_read_and_one_byte_more_is_too_large() {
    let body = json!({ "results": [sms("h-2", "385911")] }).to_string();
    let with_trace = |trace_len: usize| {
        let mut r = binary("sms.received", Some("application/json"), &[], body.as_bytes());
        let used: usize = r.headers.iter().map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len)).sum();
        r.headers.push(header("x-trace", &"t".repeat(trace_len - used - "x-trace".len())));
        r
    };
    assert_eq!(decode_ok(&with_trace(MAX_HEADER_BYTES)).messages.len(), 1);
    assert_too_large(&decode_err(&with_trace(MAX_HEADER_BYTES + 1)), "65536 bytes");
}

#[test]
fn a_cloudevents_attribute_of_one_kib_is_read_and_one_byte_more_is_too_large_in_both_modes() {
    let body = json!({ "results": [sms("a-1", "385911")] }).to_string();
    for name in ["ce_id", "ce_source", "ce_recipient", "ce_anything"] {
        let record = |len: usize| {
            let mut r = binary("sms.received", Some("application/json"), &[], body.as_bytes());
            r.headers.retain(|h| h.key != name);
            r.headers.push(header(name, &"a".repeat(len)));
            r
        };
        assert_eq!(decode_ok(&record(MAX_ATTRIBUTE_BYTES)).messages.len(), 1, "{name}");
        let err = decode_err(&record(MAX_ATTRIBUTE_BYTES + 1));
        assert_too_large(&err, "1024 bytes per attribute");
        assert!(err.detail.contains(name), "{err}");
    }
    for name in ["id", "source", "recipient", "datacontenttype"] {
        let mut event = attributes("sms.received");
        event["data"] = json!({ "results": [sms("a-2", "385911")] });
        event[name] = json!(format!("application/json;{}", "a".repeat(MAX_ATTRIBUTE_BYTES)));
        let err = decode_err(&structured(event));
        assert_too_large(&err, "1024 bytes per attribute");
        assert!(err.detail.contains(&format!("attribute {name} is")), "{err}");
    }
}

#[test]
fn an_sms_id_or_address_past_its_bound_makes_its_item_too_large_and_the_rest_is_placed() {
    let id_at = "i".repeat(MAX_ID_BYTES);
    let from_at = "3".repeat(MAX_ADDRESS_BYTES);
    let record = infobip(vec![
        sms(&id_at, "385911"),
        sms(&format!("{id_at}i"), "385912"),
        sms("ok-2", &from_at),
        sms("ok-3", &format!("{from_at}3")),
    ]);
    let decoded = decode_ok(&record);
    let ids: Vec<&str> = decoded.messages.iter().map(|m| m.external_id.as_str()).collect();
    assert_eq!(ids, [id_at.as_str(), "ok-2"]);
    assert_eq!(decoded.invalid.len(), 2);
    assert!(decoded.invalid.iter().all(|e| e.reason == DlqReason::TooLarge));
    let letter = dead_letter_of(&record);
    assert!(letter.detail.contains("id is 999 bytes") && letter.detail.contains("address is 255 bytes"), "{letter}");
}

#[test]
fn a_messenger_reply_to_past_the_id_bound_is_dropped_not_stored() {
    let reply = |len: usize| {
        let item = messenger_item(json!({ "message": { "mid": "m_r", "reply_to": { "mid": "r".repeat(len) } } }));
        decode_ok(&messenger(json!({ "messaging": [item] }))).messages.remove(0).in_reply_to
    };
    assert_eq!(reply(MAX_ID_BYTES).map(|r| r.len()), Some(MAX_ID_BYTES));
    assert_eq!(reply(MAX_ID_BYTES + 1), None);
}

#[test]
fn input_quoted_in_a_detail_is_cut_to_the_detail_bound() {
    let body = json!({ "object": "o".repeat(1 << 20), "entry": [] }).to_string();
    let err = decode_err(&binary("messenger.received", Some("application/json"), &[], body.as_bytes()));
    assert_eq!(err.reason, DlqReason::BadPayload);
    assert!(err.detail.len() <= MAX_DETAIL_BYTES && err.detail.ends_with('…'), "{} bytes", err.detail.len());
}

#[test]
fn a_record_with_a_thousand_invalid_items_names_the_first_ones_within_the_record_detail_bound() {
    let results = (0..MAX_ITEMS).map(|i| sms(&format!("bad-{i}"), "+() -")).collect();
    let letter = dead_letter_of(&infobip(results));
    assert_eq!(letter.reason, DlqReason::BadAddress);
    assert!(letter.detail.len() <= MAX_RECORD_DETAIL_BYTES, "{} bytes", letter.detail.len());
    assert!(letter.detail.starts_with("1000 item(s) of this record cannot be read"), "{letter}");
    assert!(letter.detail.contains("Infobip result 0)") && letter.detail.ends_with(" more."), "{letter}");
}

#[test]
fn skip_names_outside_the_known_list_count_as_other_however_many_there_are() {
    let labels: std::collections::BTreeSet<&str> =
        (1..=5000).map(|n| SkipKind::named(&format!("x{n}")).as_str()).collect();
    assert_eq!(labels.into_iter().collect::<Vec<_>>(), ["other"]);
    for name in KNOWN_SKIP_NAMES {
        assert_eq!(SkipKind::named(name).as_str(), name);
        assert_eq!(SkipKind::label(name), name);
    }
    for name in ["echo", "status_report", "empty_batch", "other"] {
        assert_eq!(SkipKind::label(name), name);
    }
    for name in ["x1", "Standby", "standby ", "", "messaging"] {
        assert_eq!(SkipKind::label(name), "other", "{name:?}");
        assert_eq!(SkipKind::named(name), SkipKind::Other, "{name:?}");
    }
}

#[test]
fn a_webhook_of_new_keys_adds_no_skip_name() {
    let items: Vec<Value> =
        (0..MAX_ITEMS - 2).map(|n| messenger_item(json!({ format!("x{n}"): { "a": 1 } }))).collect();
    let decoded = decode_ok(&messenger(json!({ "messaging": items, "y1": {}, "y2": [{}] })));
    assert_eq!(decoded.skipped.len(), MAX_ITEMS);
    assert!(decoded.skipped.iter().all(|kind| *kind == SkipKind::Other), "{:?}", &decoded.skipped[..3]);
}

#[test]
fn a_twilio_message_describes_ten_media_and_a_lying_num_media_stays_fast() {
    let form = |num_media: usize, fields: usize| {
        let mut body = format!("MessageSid=SM1&From=%2B385911&To=800&Body=hi&NumMedia={num_media}");
        for i in 0..fields {
            body.push_str(&format!("&MediaUrl{i}=https%3A%2F%2Fm.example%2F{i}"));
        }
        binary("sms.received", Some("application/x-www-form-urlencoded"), &[], body.as_bytes())
    };
    let at_bound = decode_ok(&form(MAX_TWILIO_MEDIA, MAX_TWILIO_MEDIA)).messages.remove(0);
    assert_eq!((at_bound.details.attachments.len(), at_bound.details.truncated.len()), (10, 0));
    let past = decode_ok(&form(MAX_TWILIO_MEDIA + 1, MAX_TWILIO_MEDIA + 1)).messages.remove(0);
    assert_eq!((past.details.attachments.len(), past.details.truncated.clone()), (10, vec!["attachments".to_owned()]));

    let started = std::time::Instant::now();
    let lying = decode_ok(&form(400_000, 200_000)).messages.remove(0);
    assert_eq!(lying.details.attachments.len(), 10);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// One Messenger message with `attachments` image attachments, each with
/// a url of `url_len` bytes, and a quick reply payload of `payload_len`.
fn messenger_with(attachments: usize, url_len: usize, payload_len: usize) -> crate::domain::Details {
    let url = format!("https://cdn.example/{}", "u".repeat(url_len - 20));
    let items: Vec<Value> = (0..attachments).map(|_| json!({ "type": "image", "payload": { "url": url } })).collect();
    let item = messenger_item(json!({ "message": {
        "mid": "m_att", "attachments": items, "quick_reply": { "payload": "p".repeat(payload_len) } } }));
    let mut decoded = decode_ok(&messenger(json!({ "id": "1084", "time": 1, "messaging": [item] })));
    assert_eq!(decoded.messages.len(), 1);
    decoded.messages.remove(0).details
}

#[test]
fn a_messenger_message_keeps_a_thousand_attachments_and_leaves_later_ones_out() {
    let at_bound = messenger_with(MAX_ATTACHMENTS, 100, 10);
    assert_eq!(at_bound.attachments.len(), MAX_ATTACHMENTS);
    assert!(at_bound.truncated.is_empty(), "{:?}", at_bound.truncated);

    let past = messenger_with(MAX_ATTACHMENTS + 1, 100, 10);
    assert_eq!(past.attachments.len(), MAX_ATTACHMENTS);
    assert_eq!(past.truncated, ["attachments"]);
}

#[test]
fn an_attachment_url_and_a_quick_reply_payload_are_cut_at_the_detail_text_bound() {
    let at_bound = messenger_with(1, MAX_DETAIL_TEXT_BYTES, MAX_DETAIL_TEXT_BYTES);
    assert_eq!(at_bound.attachments[0].url.as_ref().map(String::len), Some(MAX_DETAIL_TEXT_BYTES));
    assert_eq!(at_bound.keyword.as_ref().map(String::len), Some(MAX_DETAIL_TEXT_BYTES));
    assert!(at_bound.truncated.is_empty(), "{:?}", at_bound.truncated);

    // A megabyte each: cut, and both named once.
    let past = messenger_with(2, 1 << 20, 1 << 20);
    assert!(past.attachments.iter().all(|a| a.url.as_ref().map(String::len) == Some(MAX_DETAIL_TEXT_BYTES)));
    assert_eq!(past.keyword.as_ref().map(String::len), Some(MAX_DETAIL_TEXT_BYTES));
    assert_eq!(past.truncated, ["keyword", "attachments"]);
}

#[test]
fn an_infobip_keyword_past_the_detail_text_bound_is_cut_on_a_character_boundary() {
    let keyword = |text: String| {
        let mut result = sms("ib-k", "385911");
        result["keyword"] = json!(text);
        decode_ok(&infobip(vec![result])).messages.remove(0).details
    };
    let at_bound = keyword("k".repeat(MAX_DETAIL_TEXT_BYTES));
    assert_eq!(at_bound.keyword.map(|k| k.len()), Some(MAX_DETAIL_TEXT_BYTES));
    assert!(at_bound.truncated.is_empty());

    // 4,095 bytes, then a three-byte character that would end past the bound.
    let past = keyword(format!("{}€", "k".repeat(MAX_DETAIL_TEXT_BYTES - 1)));
    assert_eq!(past.keyword.map(|k| k.len()), Some(MAX_DETAIL_TEXT_BYTES - 1));
    assert_eq!(past.truncated, ["keyword"]);
}

#[test]
fn each_recipient_entry_and_a_sender_name_are_cut_to_their_bounds_once_named() {
    let mut details = crate::domain::Details {
        to: vec!["a@x".to_owned(), "t".repeat(MAX_DETAIL_TEXT_BYTES + 1)],
        cc: vec!["c".repeat(MAX_DETAIL_TEXT_BYTES)],
        reply_to: vec!["r".repeat(1 << 20)],
        sender_name: Some("n".repeat(MAX_NAME_BYTES + 1)),
        kind: Some("message".to_owned()),
        truncated: vec!["to".to_owned()],
        ..Default::default()
    };
    cut_details(&mut details);
    assert_eq!(details.to, ["a@x".to_owned(), "t".repeat(MAX_DETAIL_TEXT_BYTES)]);
    assert_eq!(details.cc, ["c".repeat(MAX_DETAIL_TEXT_BYTES)], "at the bound, kept whole");
    assert_eq!(details.reply_to[0].len(), MAX_DETAIL_TEXT_BYTES);
    assert_eq!(details.sender_name.as_ref().map(String::len), Some(MAX_NAME_BYTES));
    // `to` was already named (its count was cut by the decoder): once.
    assert_eq!(details.truncated, ["to", "reply_to", "sender_name"]);
}

/// JSON nesting read in a payload (a webhook body, a structured event), in
/// levels counted from the document's top. The bound is serde_json's own
/// recursion limit, which refuses the 128th level with an error (the record
/// is then `bad_payload`) before the stack could overflow; this test keeps
/// it from changing unseen. Real webhooks nest about eight deep. Keys the
/// decoders do not know are skipped without recursion, at any depth.
const MAX_JSON_DEPTH: usize = 127;

/// A Messenger webhook whose one item has a key `x` holding arrays nested
/// `depth` deep: with the document's object, the entry list, the entry,
/// the item list and the item, the deepest array is `depth + 5` levels in.
fn messenger_nested(depth: usize) -> SourceRecord {
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"1084","time":1,"messaging":[{{"sender":{{"id":"7021"}},"recipient":{{"id":"1084"}},"timestamp":1,"message":{{"mid":"m_deep","text":"hi"}},"x":{nested}}}]}}]}}"#
    );
    binary("messenger.received", Some("application/json"), &[], body.as_bytes())
}

#[test]
fn json_nested_to_the_depth_bound_decodes_and_one_level_deeper_is_a_bad_payload() {
    let at_bound = decode_ok(&messenger_nested(MAX_JSON_DEPTH - 5));
    assert_eq!(at_bound.messages.len(), 1);

    let err = decode_err(&messenger_nested(MAX_JSON_DEPTH - 4));
    assert_eq!(err.reason, DlqReason::BadPayload, "{err}");
    assert!(err.detail.contains("recursion limit exceeded"), "{err}");
    // Three million levels (6 MB): refused at the bound, not by a stack overflow.
    assert_eq!(decode_err(&messenger_nested(3_000_000)).reason, DlqReason::BadPayload);

    // An Infobip result the same: its batch is one JSON document.
    let deep = |depth: usize| {
        let mut result = sms("ib-deep", "385911");
        let mut nested = json!([]);
        for _ in 1..depth {
            nested = json!([nested]);
        }
        result["x"] = nested;
        infobip(vec![result])
    };
    // The document's object, `results`, the result, then the arrays.
    assert_eq!(decode_ok(&deep(MAX_JSON_DEPTH - 3)).messages.len(), 1);
    assert_eq!(decode_err(&deep(MAX_JSON_DEPTH - 2)).reason, DlqReason::BadPayload);
}

#[test]
fn an_sms_endpoint_past_the_address_bound_makes_its_item_too_large() {
    let to = |digits: usize| {
        let mut result = sms("ib-to", "385911");
        result["to"] = json!("8".repeat(digits));
        result
    };
    let record = infobip(vec![to(MAX_ADDRESS_BYTES), to(MAX_ADDRESS_BYTES + 1)]);
    let decoded = decode_ok(&record);
    assert_eq!(decoded.messages.len(), 1);
    assert_eq!(decoded.messages[0].endpoint.as_str().len(), MAX_ADDRESS_BYTES);
    assert_eq!(decoded.invalid.len(), 1);
    assert_too_large(&decoded.invalid[0], "254 bytes");
    assert!(decoded.invalid[0].detail.contains("endpoint address is 255 bytes"), "{}", decoded.invalid[0]);
}

#[test]
fn a_messenger_mid_and_sender_id_are_read_to_their_bounds_and_one_byte_more_is_too_large() {
    let item = |mid: usize, sender: usize| {
        let mut item = messenger_item(json!({ "message": { "mid": "m".repeat(mid), "text": "hi" } }));
        item["sender"]["id"] = json!("7".repeat(sender));
        item
    };
    let at_bound = decode_ok(&messenger(json!({ "messaging": [item(MAX_ID_BYTES, MAX_ADDRESS_BYTES)] })));
    let m = &at_bound.messages[0];
    assert_eq!((m.external_id.as_str().len(), m.contact.as_str().len()), (MAX_ID_BYTES, MAX_ADDRESS_BYTES));

    let long_mid = decode_err(&messenger(json!({ "messaging": [item(MAX_ID_BYTES + 1, 4)] })));
    assert_too_large(&long_mid, "998 bytes");
    assert!(long_mid.detail.contains("id is 999 bytes"), "{long_mid}");
    let long_sender = decode_err(&messenger(json!({ "messaging": [item(8, MAX_ADDRESS_BYTES + 1)] })));
    assert!(long_sender.detail.contains("contact address is 255 bytes"), "{long_sender}");
}

#[test]
fn a_twilio_message_sid_past_the_id_bound_is_too_large() {
    let form = |sid_len: usize| {
        let body = format!("MessageSid={}&From=%2B385911&To=800&Body=hi", "S".repeat(sid_len));
        binary("sms.received", Some("application/x-www-form-urlencoded"), &[], body.as_bytes())
    };
    assert_eq!(decode_ok(&form(MAX_ID_BYTES)).messages[0].external_id.as_str().len(), MAX_ID_BYTES);
    let err = decode_err(&form(MAX_ID_BYTES + 1));
    assert_too_large(&err, "998 bytes");
    assert!(err.detail.contains("id is 999 bytes"), "{err}");
}

#[test]
fn structured_attributes_are_read_at_the_bound_and_the_type_is_bounded_in_both_modes() {
    for name in ["id", "source", "recipient"] {
        let mut event = attributes("sms.received");
        event["data"] = json!({ "results": [sms("a-3", "385911")] });
        event[name] = json!("a".repeat(MAX_ATTRIBUTE_BYTES));
        assert_eq!(decode_ok(&structured(event)).messages.len(), 1, "{name} at the bound");
    }
    // A type of 1,025 bytes is refused for its size before it is looked up.
    let mut event = attributes(&"t".repeat(MAX_ATTRIBUTE_BYTES + 1));
    event["data"] = json!({});
    let err = decode_err(&structured(event));
    assert_too_large(&err, "1024 bytes per attribute");
    assert!(err.detail.contains("attribute type is 1025 bytes"), "{err}");
    let body = json!({ "results": [sms("a-4", "385911")] }).to_string();
    let binary_type = binary(&"t".repeat(MAX_ATTRIBUTE_BYTES + 1), Some("application/json"), &[], body.as_bytes());
    assert_too_large(&decode_err(&binary_type), "1024 bytes per attribute");
}
