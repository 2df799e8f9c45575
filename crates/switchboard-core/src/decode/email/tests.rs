use crate::decode::test_support::{
    attributes, binary, decode_err, decode_ok, email_event, fixture, structured, with_base64, RECORD_TIMESTAMP_MS,
};
use crate::decode::DlqReason;
use crate::domain::{Attachment, Channel, InboundMessage};
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

const REPLY: &[u8] = fixture!("email/reply.eml");
const ATTACHMENT: &[u8] = fixture!("email/attachment.eml");
const HTML_ONLY: &[u8] = fixture!("email/html_only.eml");
const NO_MESSAGE_ID: &[u8] = fixture!("email/no_message_id.eml");
const AUTO_REPLY: &[u8] = fixture!("email/auto_reply.eml");
const BOUNCE: &[u8] = fixture!("email/bounce.eml");

fn only_message(record: &crate::record::SourceRecord) -> InboundMessage {
    let decoded = decode_ok(record);
    assert!(decoded.skipped.is_empty(), "{:?}", decoded.skipped);
    match <[InboundMessage; 1]>::try_from(decoded.messages) {
        Ok([message]) => message,
        Err(messages) => panic!("expected one message, got {}", messages.len()),
    }
}

pub(super) fn email(raw: &[u8]) -> InboundMessage {
    only_message(&email_event(raw))
}

/// A short plain-text email with `extra` header lines (each ending in CRLF).
fn mail_with(extra: &str) -> Vec<u8> {
    format!(
        "From: Ana Horvat <ana.horvat@example.com>\r\nTo: support@example.net\r\nSubject: Order 55-1093\r\n\
         Message-ID: <m-55-1093@example.com>\r\n{extra}\r\nWhere is my order?\r\n"
    )
    .into_bytes()
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

#[test]
fn a_reply_is_placed_by_its_message_id_in_reply_to_and_references_in_header_order() {
    let message = email(REPLY);
    assert_eq!(message.channel, Channel::Email);
    assert_eq!(message.external_id.as_str(), "CAF=q8Yp3xLr2d9+7Qm@mail.example.com");
    assert_eq!(message.in_reply_to.as_deref(), Some("reply-4821-2@support.example.net"));
    assert_eq!(
        message.references,
        ["CAF=q8Yo1aaZ0@mail.example.com", "reply-4821-1@support.example.net", "reply-4821-2@support.example.net"]
    );
    assert_eq!(message.subject.as_deref(), Some("Re: [#4821] Invoice INV-2026-0117 charged twice"));
    assert!(!message.auto_generated);
}

#[test]
fn the_endpoint_is_the_recipient_and_the_contact_the_first_from_mailbox_both_normalized() {
    let record = binary("email.received", None, &[("ce_recipient", "  Support@Example.NET ")], REPLY);
    let message = only_message(&record);
    assert_eq!(message.endpoint.as_str(), "support@example.net");
    assert_eq!(message.contact.as_str(), "ana.horvat@example.com");
    assert_eq!(message.details.sender_name.as_deref(), Some("Ana Horvat"));
}

#[test]
fn to_cc_and_reply_to_are_kept_as_lowercased_addresses() {
    let details = email(REPLY).details;
    assert_eq!(details.to, ["support@example.net", "billing@example.net"]);
    assert_eq!(details.cc, ["marko.kovac@example.com"]);
    assert_eq!(details.reply_to, ["ana.replies@example.com"]);
}

#[test]
fn the_date_header_becomes_sent_at_in_utc() {
    assert_eq!(email(REPLY).sent_at, Some(utc("2026-11-24T09:14:02Z")));
    assert_eq!(email(HTML_ONLY).sent_at, Some(utc("2026-11-26T19:30:00Z")));
}

#[test]
fn a_multipart_alternative_email_keeps_its_text_and_its_html() {
    let message = email(REPLY);
    assert!(message.body_text.starts_with("Hi,\r\n\r\nthanks for the quick answer."), "{:?}", message.body_text);
    assert!(message.body_text.contains("yet \u{2013} could you check again?"));
    let html = message.body_html.expect("the email has an HTML part");
    assert!(html.starts_with("<div dir=\"ltr\">Hi,<br><br>thanks"), "{html}");
}

#[test]
fn an_html_only_email_gets_its_text_from_the_html_and_keeps_the_html() {
    let message = email(HTML_ONLY);
    assert!(message.body_text.contains("we would like a quote for 40 chairs"), "{:?}", message.body_text);
    assert!(!message.body_text.contains("<b>"));
    assert!(message.body_html.as_deref().is_some_and(|h| h.contains("<b>40 chairs</b>")));
    assert_eq!(message.details.sender_name.as_deref(), Some("Petra Babić"));
    assert_eq!(message.endpoint.as_str(), "support@example.net");
}

#[test]
fn a_plain_text_email_has_no_html_body() {
    let message = email(NO_MESSAGE_ID);
    assert_eq!(message.body_html, None);
    assert_eq!(message.body_text, "The printer on the 2nd floor is offline again since this morning.\r\n");
    assert_eq!(message.details.sender_name, None);
}

#[test]
fn attachments_are_described_by_name_type_and_decoded_size() {
    let message = email(ATTACHMENT);
    assert_eq!(
        message.details.attachments,
        [
            Attachment {
                name: Some("račun-2026-11.pdf".into()),
                content_type: Some("application/pdf".into()),
                size: Some(142),
                url: None,
                title: None,
                coordinates: None,
            },
            Attachment {
                name: Some("screenshot.png".into()),
                content_type: Some("image/png".into()),
                size: Some(67),
                url: None,
                title: None,
                coordinates: None,
            },
        ]
    );
    assert!(message.body_text.contains("attached are my bank statement (račun)"));
}

#[test]
fn an_email_without_message_id_is_named_by_the_sha256_of_its_raw_bytes() {
    let message = email(NO_MESSAGE_ID);
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(NO_MESSAGE_ID)));
    assert_eq!(message.external_id.as_str(), expected);
    assert_eq!(email(NO_MESSAGE_ID).external_id, message.external_id, "the id is deterministic");
}

#[test]
fn the_raw_source_is_kept_byte_for_byte() {
    for raw in [REPLY, ATTACHMENT, HTML_ONLY, NO_MESSAGE_ID, BOUNCE] {
        assert_eq!(email(raw).raw.as_deref(), Some(raw));
    }
}

#[test]
fn received_at_is_the_event_time_else_the_record_timestamp() {
    let mut event = with_base64(attributes("email.received"), REPLY);
    event["recipient"] = json!("support@example.net");
    assert_eq!(only_message(&structured(event)).received_at, utc("2026-11-24T09:14:09.250Z"));
    let from_record = email(REPLY).received_at;
    assert_eq!(from_record.timestamp_millis(), RECORD_TIMESTAMP_MS);
}

#[test]
fn a_structured_mode_email_decodes_like_the_binary_one_from_base64_or_a_string() {
    let binary_mode = email(REPLY);
    let mut base64 = with_base64(attributes("email.received"), REPLY);
    base64["recipient"] = json!("support@example.net");
    let mut text = attributes("email.received");
    text["recipient"] = json!("support@example.net");
    text["datacontenttype"] = json!("message/rfc822");
    text["data"] = json!(std::str::from_utf8(REPLY).unwrap());
    for event in [base64, text] {
        let message = only_message(&structured(event));
        assert_eq!(message.raw.as_deref(), Some(REPLY));
        assert_eq!(message.external_id, binary_mode.external_id);
        assert_eq!(message.references, binary_mode.references);
        assert_eq!(message.body_text, binary_mode.body_text);
    }
}

#[test]
fn an_ordinary_reply_is_not_auto_generated() {
    assert!(!email(&mail_with("")).auto_generated);
    assert!(!email(&mail_with("Precedence: first-class\r\n")).auto_generated);
}

#[test]
fn an_auto_submitted_reply_is_auto_generated_but_auto_submitted_no_is_not() {
    assert!(email(AUTO_REPLY).auto_generated);
    assert!(email(&mail_with("Auto-Submitted: auto-generated\r\n")).auto_generated);
    assert!(email(&mail_with("auto-submitted: auto-notified; owner-email=\"ops@example.com\"\r\n")).auto_generated);
    assert!(!email(&mail_with("Auto-Submitted: no\r\n")).auto_generated);
    assert!(!email(&mail_with("Auto-Submitted: No (sent by a person)\r\n")).auto_generated);
}

#[test]
fn bulk_junk_and_list_precedence_is_auto_generated() {
    for value in ["bulk", "junk", "list", "Bulk"] {
        let raw = mail_with(&format!("Precedence: {value}\r\n"));
        assert!(email(&raw).auto_generated, "Precedence: {value}");
    }
}

#[test]
fn an_x_autoreply_or_x_autorespond_header_is_auto_generated() {
    assert!(email(&mail_with("X-Autoreply: yes\r\n")).auto_generated);
    assert!(email(&mail_with("X-Autorespond: Vacation\r\n")).auto_generated);
}

#[test]
fn a_delivery_status_report_is_auto_generated() {
    let bounce = email(BOUNCE);
    assert!(bounce.auto_generated);
    assert_eq!(bounce.contact.as_str(), "mailer-daemon@mx.example.com");
}

#[test]
fn a_message_delivery_status_part_outside_a_report_is_auto_generated() {
    let raw = b"From: postmaster@example.com\r\nTo: support@example.net\r\nSubject: Delivery delayed\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n\
        --b1\r\nContent-Type: text/plain\r\n\r\nStill trying.\r\n\
        --b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n\
        Final-Recipient: rfc822; ana@example.com\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n--b1--\r\n";
    assert!(email(raw).auto_generated);
}

#[test]
fn a_read_receipt_is_auto_generated() {
    let raw = b"From: ana.horvat@example.com\r\nTo: support@example.net\r\nSubject: Read: Order\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b2\r\n\r\n\
        --b2\r\nContent-Type: text/plain\r\n\r\nYour message was displayed.\r\n--b2--\r\n";
    assert!(email(raw).auto_generated);
}

#[test]
fn a_message_disposition_notification_part_is_a_read_receipt() {
    let raw = b"From: ana@example.com\r\nSubject: Read: Order\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nDisplayed.\r\n\
        --b\r\nContent-Type: message/disposition-notification\r\n\r\n\
        Final-Recipient: rfc822; ana@example.com\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n\r\n--b--\r\n";
    assert!(email(raw).auto_generated);
}

#[test]
fn a_multipart_report_of_an_unknown_kind_is_not_automatic() {
    let raw = b"From: ana@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n--b\r\n\r\nhi\r\n--b--\r\n";
    assert!(!email(raw).auto_generated);
}

#[test]
fn mail_from_the_null_sender_or_a_mail_system_mailbox_is_auto_generated() {
    assert!(email(&mail_with("Return-Path: <>\r\n")).auto_generated);
    assert!(email(&mail_with("Return-Path: < >\r\n")).auto_generated);
    assert!(!email(&mail_with("Return-Path: <ana@example.com>\r\n")).auto_generated);
    for from in [
        "MAILER-DAEMON@mx.example.com",
        "Mail Delivery System <Mailer-Daemon@mx.example.com>",
        "postmaster@example.com",
    ] {
        let raw = format!("From: {from}\r\nTo: support@example.net\r\nSubject: Undeliverable\r\n\r\nSorry.\r\n");
        assert!(email(raw.as_bytes()).auto_generated, "{from}");
    }
    let person = b"From: postmaster.jones@example.com\r\nSubject: hi\r\n\r\nhello\r\n";
    assert!(!email(person).auto_generated, "only the whole local part counts");
}

#[test]
fn a_binary_mode_email_without_recipient_is_missing_recipient() {
    let record = binary("email.received", Some("message/rfc822"), &[], REPLY);
    let err = decode_err(&record);
    assert_eq!(err.reason, DlqReason::MissingRecipient);
    assert!(err.detail.contains("5b1c3f0e-8d2a-4f7b-9c61-2e4a8d0f1b37"), "{}", err.detail);
}

#[test]
fn a_blank_recipient_is_missing_recipient() {
    let record = binary("email.received", None, &[("ce_recipient", "   ")], REPLY);
    assert_eq!(decode_err(&record).reason, DlqReason::MissingRecipient);
}

#[test]
fn a_structured_mode_email_without_recipient_is_missing_recipient() {
    let event = with_base64(attributes("email.received"), REPLY);
    assert_eq!(decode_err(&structured(event)).reason, DlqReason::MissingRecipient);
}

#[test]
fn an_email_without_a_from_address_is_a_bad_address() {
    let no_from = b"To: support@example.net\r\nSubject: hello\r\nMessage-ID: <x@example.com>\r\n\r\nhi\r\n";
    assert_eq!(decode_err(&email_event(no_from)).reason, DlqReason::BadAddress);
    let group_only = b"From: undisclosed-recipients:;\r\nTo: support@example.net\r\nSubject: hello\r\n\r\nhi\r\n";
    assert_eq!(decode_err(&email_event(group_only)).reason, DlqReason::BadAddress);
}

#[test]
fn a_payload_that_is_not_an_email_is_a_bad_payload() {
    let payloads: [&[u8]; 4] = [b"", b"this is not an email", b"\xff\xfe\x00\r\n", b"hello\r\n\r\nworld"];
    for payload in payloads {
        let err = decode_err(&email_event(payload));
        assert_eq!(err.reason, DlqReason::BadPayload, "{:?}", String::from_utf8_lossy(payload));
    }
}
