//! The email's bounds at their number and one past it: what is cut is
//! listed in `details.truncated` and `raw` keeps the message whole.

use super::tests::email;
use crate::decode::bounds::{
    MAX_ADDRESS_BYTES, MAX_ID_BYTES, MAX_IN_REPLY_TO, MAX_MIME_DEPTH, MAX_MIME_PARTS, MAX_NAME_BYTES, MAX_RECIPIENTS,
    MAX_REFERENCES, MAX_SUBJECT_BYTES,
};
use crate::decode::test_support::{decode_err, email_event};
use crate::decode::DlqReason;
use crate::domain::InboundMessage;
use std::time::{Duration, Instant};

/// A plain mail from Ana with `headers` (each line ending in CRLF) and `body`.
fn mail(headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Ana Horvat <ana@example.com>\r\nTo: support@example.net\r\nMessage-ID: <b-1@example.com>\r\n\
         {headers}\r\n{body}"
    )
    .into_bytes()
}

/// `count` ids `<r0@x>`, `<r1@x>`, ... as one header value.
fn ids(count: usize) -> String {
    (0..count).map(|i| format!("<r{i}@x>")).collect::<Vec<_>>().join(" ")
}

fn expected_ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("r{i}@x")).collect()
}

fn decoded(raw: &[u8]) -> InboundMessage {
    let message = email(raw);
    assert_eq!(message.raw.as_deref(), Some(raw), "raw keeps the whole message");
    message
}

#[test]
fn a_hundred_references_are_all_kept() {
    let message = decoded(&mail(&format!("References: {}\r\n", ids(MAX_REFERENCES)), "hi"));
    assert_eq!(message.references, expected_ids(0..100));
    assert!(message.details.truncated.is_empty());
}

#[test]
fn of_a_hundred_and_one_references_the_oldest_is_dropped() {
    let message = decoded(&mail(&format!("References: {}\r\n", ids(MAX_REFERENCES + 1)), "hi"));
    assert_eq!(message.references, expected_ids(1..101));
    assert_eq!(message.details.truncated, ["references"]);
}

#[test]
fn a_quarter_million_references_decode_quickly_to_the_newest_hundred() {
    let raw = mail(&format!("References: {}\r\nIn-Reply-To: <r249999@x>\r\n", ids(250_000)), "hi");
    assert!(raw.len() > 2_000_000, "{} bytes", raw.len());
    let started = Instant::now();
    let message = decoded(&raw);
    let took = started.elapsed();
    assert_eq!(message.references, expected_ids(249_900..250_000));
    assert_eq!(message.in_reply_to.as_deref(), Some("r249999@x"));
    assert_eq!(message.reference_candidates().count(), 101, "so at most 101 reference locks");
    // Linear in the header: about 0.3 s in an unoptimized build; the bound
    // leaves room for a busy shared machine.
    eprintln!("250,000 references decoded in {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn in_reply_to_keeps_its_first_ten_ids_and_the_first_is_the_parent() {
    let at_bound = decoded(&mail(&format!("In-Reply-To: {}\r\n", ids(MAX_IN_REPLY_TO)), "hi"));
    assert_eq!(at_bound.in_reply_to.as_deref(), Some("r0@x"));
    // The others are tried next: last in `references`, tried newest first.
    assert_eq!(at_bound.references, expected_ids(1..10).into_iter().rev().collect::<Vec<_>>());
    assert!(at_bound.details.truncated.is_empty());

    let past = decoded(&mail(&format!("In-Reply-To: {}\r\n", ids(MAX_IN_REPLY_TO + 1)), "hi"));
    assert_eq!(past.in_reply_to.as_deref(), Some("r0@x"));
    assert!(!past.references.iter().any(|r| r == "r10@x"));
    assert_eq!(past.details.truncated, ["in_reply_to"]);

    // In-Reply-To's ids count towards the hundred references.
    let both = decoded(&mail(&format!("References: {}\r\nIn-Reply-To: <p0@x> <p1@x>\r\n", ids(100)), "hi"));
    assert_eq!(both.references.len(), MAX_REFERENCES);
    assert_eq!((both.references[0].as_str(), both.references[99].as_str()), ("r1@x", "p1@x"));
}

#[test]
fn a_message_id_longer_than_the_id_bound_is_replaced_by_the_content_hash() {
    let long = |len: usize| {
        let raw = format!("From: ana@example.com\r\nMessage-ID: <{}@x>\r\n\r\nhi", "m".repeat(len - 2)).into_bytes();
        email(&raw).external_id.as_str().to_owned()
    };
    assert_eq!(long(MAX_ID_BYTES).len(), MAX_ID_BYTES);
    assert!(long(MAX_ID_BYTES + 1).starts_with("sha256:"));
}

#[test]
fn a_message_id_that_outgrows_the_bound_only_once_its_nuls_are_replaced_falls_back_to_the_content_hash() {
    // Each NUL is stored as U+FFFD, three bytes: `nuls` NULs and the rest
    // of the id make `stored` bytes once cleaned.
    let with_nuls = |stored: usize, nuls: usize| {
        let filler = "m".repeat(stored - 2 - 3 * nuls);
        let raw = format!("From: ana@example.com\r\nMessage-ID: <{filler}{}@x>\r\n\r\nhi", "\0".repeat(nuls));
        let message = email(raw.as_bytes());
        (message.external_id.as_str().to_owned(), message.details.nul_removed)
    };
    let (at_bound, cleaned) = with_nuls(MAX_ID_BYTES, 10);
    assert_eq!(at_bound.len(), MAX_ID_BYTES);
    assert!(at_bound.ends_with(&format!("{}@x", "\u{FFFD}".repeat(10))), "{at_bound}");
    assert_eq!(cleaned, ["external_id"]);

    // One byte more once cleaned (990 bytes as received): the email is
    // placed, named by its content, not dead-lettered as too large.
    let (past, _) = with_nuls(MAX_ID_BYTES + 1, 10);
    assert!(past.starts_with("sha256:"), "{past}");
}

#[test]
fn the_subject_is_cut_at_its_bound_on_a_character_boundary() {
    let at_bound = "s".repeat(MAX_SUBJECT_BYTES);
    let message = decoded(&mail(&format!("Subject: {at_bound}\r\n"), "hi"));
    assert_eq!(message.subject.as_deref(), Some(at_bound.as_str()));
    assert!(message.details.truncated.is_empty());

    // 1,023 bytes, then a two-byte character that would end at 1,025.
    let past = format!("{}é", "s".repeat(MAX_SUBJECT_BYTES - 1));
    let message = decoded(&mail(&format!("Subject: {past}\r\n"), "hi"));
    assert_eq!(message.subject.as_deref(), Some(&past[..MAX_SUBJECT_BYTES - 1]));
    assert_eq!(message.details.truncated, ["subject"]);

    let megabyte = decoded(&mail(&format!("Subject: {}\r\n", "s".repeat(1 << 20)), "the body"));
    assert_eq!(megabyte.subject.map(|s| s.len()), Some(MAX_SUBJECT_BYTES));
    assert_eq!(megabyte.body_text.trim(), "the body");
}

#[test]
fn a_megabyte_sender_name_is_cut_and_an_address_past_its_bound_is_too_large() {
    let name = |len: usize| {
        let raw = format!("From: \"{}\" <ana@example.com>\r\nMessage-ID: <n@x>\r\n\r\nhi", "N".repeat(len));
        let message = email(raw.as_bytes());
        (message.details.sender_name.map(|n| n.len()), message.details.truncated)
    };
    assert_eq!(name(MAX_NAME_BYTES), (Some(MAX_NAME_BYTES), vec![]));
    assert_eq!(name(MAX_NAME_BYTES + 1), (Some(MAX_NAME_BYTES), vec!["sender_name".to_owned()]));
    assert_eq!(name(1 << 20).0, Some(MAX_NAME_BYTES));

    let from = |len: usize| format!("From: {}@example.com\r\nMessage-ID: <a@x>\r\n\r\nhi", "a".repeat(len - 12));
    assert_eq!(email(from(MAX_ADDRESS_BYTES).as_bytes()).contact.as_str().len(), MAX_ADDRESS_BYTES);
    let err = decode_err(&email_event(from(MAX_ADDRESS_BYTES + 1).as_bytes()));
    assert_eq!(err.reason, DlqReason::TooLarge);
    assert!(err.detail.contains("contact address is 255 bytes, more than the bound of 254 bytes"), "{err}");
}

#[test]
fn a_hundred_recipients_are_listed_and_more_are_cut() {
    let to = |count: usize| (0..count).map(|i| format!("c{i}@example.com")).collect::<Vec<_>>().join(", ");
    let message = decoded(&mail(&format!("Cc: {}\r\n", to(MAX_RECIPIENTS)), "hi"));
    assert_eq!((message.details.cc.len(), message.details.truncated.len()), (100, 0));
    let message = decoded(&mail(&format!("Cc: {}\r\n", to(MAX_RECIPIENTS + 1)), "hi"));
    assert_eq!((message.details.cc.len(), message.details.truncated.clone()), (100, vec!["cc".to_owned()]));
}

/// A text part inside `depth` nested multiparts.
fn nested(depth: usize) -> Vec<u8> {
    // Written outside in, openings then closings: wrapping the part level
    // by level would copy it once per level.
    let mut raw = String::from("From: ana@example.com\r\nMessage-ID: <deep@x>\r\nMIME-Version: 1.0\r\n");
    for d in 0..depth {
        raw.push_str(&format!("Content-Type: multipart/mixed; boundary=\"b{d}\"\r\n\r\n--b{d}\r\n"));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\ndeep text\r\n");
    for d in (0..depth).rev() {
        raw.push_str(&format!("\r\n--b{d}--\r\n"));
    }
    raw.into_bytes()
}

#[test]
fn a_body_inside_a_hundred_multiparts_is_read_and_one_level_deeper_is_left_in_raw() {
    let at_bound = decoded(&nested(MAX_MIME_DEPTH));
    assert_eq!(at_bound.body_text.trim(), "deep text");
    assert!(at_bound.details.truncated.is_empty());
    let past = decoded(&nested(MAX_MIME_DEPTH + 1));
    assert_eq!(past.body_text, "");
    assert_eq!(past.details.truncated, ["mime_depth"]);
}

/// A multipart/mixed with a text part and `attachments` attachments, the
/// text first or last: `attachments + 2` parts with the container.
fn with_parts(attachments: usize, text_last: bool) -> Vec<u8> {
    let text = "--sep\r\nContent-Type: text/plain\r\n\r\nthe text\r\n";
    let mut body = String::from(if text_last { "" } else { text });
    for a in 0..attachments {
        body.push_str(&format!(
            "--sep\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"a{a}.bin\"\r\n\r\nx\r\n"
        ));
    }
    body.push_str(if text_last { text } else { "" });
    body.push_str("--sep--\r\n");
    mail("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n", &body)
}

#[test]
fn a_thousand_parts_are_read_and_later_ones_are_left_in_raw() {
    let at_bound = decoded(&with_parts(MAX_MIME_PARTS - 2, false));
    assert_eq!(at_bound.details.attachments.len(), 998);
    assert_eq!(at_bound.body_text.trim(), "the text");
    assert!(at_bound.details.truncated.is_empty());

    let past = decoded(&with_parts(MAX_MIME_PARTS - 1, false));
    assert_eq!(past.details.attachments.len(), 998, "the thousand-and-first part is not described");
    assert_eq!(past.details.truncated, ["mime_parts"]);

    let text_past = decoded(&with_parts(MAX_MIME_PARTS - 1, true));
    assert_eq!(text_past.body_text, "", "a body after the thousandth part is not read");
}

#[test]
fn a_ten_megabyte_mime_bomb_decodes_quickly_to_its_bounds() {
    let started = Instant::now();
    let deep = decoded(&nested(120_000));
    let many = decoded(&with_parts(90_000, true));
    let took = started.elapsed();
    let sizes = (deep.raw.as_ref().unwrap().len(), many.raw.as_ref().unwrap().len());
    assert!(sizes.0 > 8_000_000 && sizes.1 > 8_000_000, "{sizes:?}");
    assert_eq!(deep.body_text, "");
    assert_eq!(deep.details.truncated, ["mime_depth", "mime_parts"]);
    assert_eq!(many.details.attachments.len(), 999, "the parts after the container");
    eprintln!("two 10 MB MIME bombs decoded in {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn a_reference_that_nul_replacement_pushes_past_the_id_bound_is_left_out() {
    // 992 bytes as sent, within the bound; U+FFFD (3 bytes) replaces each
    // NUL, so two make it 996 bytes and four 1,000.
    let id = |nuls: usize| format!("{}{}@x", "\0".repeat(nuls), "r".repeat(MAX_ID_BYTES - 8 - nuls));
    let raw = mail(&format!("References: <{}> <{}> <kept@x>\r\n", id(2), id(4)), "hi");
    let message = email(&raw);
    let lengths: Vec<usize> = message.references.iter().map(|r| r.len()).collect();
    assert_eq!(lengths, [996, 6]);
}
