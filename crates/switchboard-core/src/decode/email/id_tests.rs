//! Email identifiers as real mail writes them (ids parsed from the raw
//! headers: `super::super::msgid`).

use super::tests::email;
use crate::decode::test_support::{binary, decode_ok, fixture};
use crate::domain::ExternalId;

const REPLY: &[u8] = fixture!("email/reply.eml");

#[test]
fn every_in_reply_to_id_is_tried_before_the_references() {
    let m = email(
        b"From: ana@example.com\r\nMessage-ID: <r@x>\r\nIn-Reply-To: <p1@x> <p2@x>, <p3@x>\r\n\
        References: <old@x> <p2@x> <newer@x>\r\n\r\nhi\r\n",
    );
    let order: Vec<&str> = m.reference_candidates().map(ExternalId::as_str).collect();
    assert_eq!(order, ["p1@x", "p2@x", "p3@x", "newer@x", "old@x"]);
    assert_eq!(m.in_reply_to.as_deref(), Some("p1@x"), "the stored In-Reply-To is the first id");
}

#[test]
fn the_first_of_repeated_message_id_and_from_headers_counts() {
    let m = email(
        b"From: Ana <ana@example.com>\r\nMessage-ID: <first@x>\r\nMessage-ID: <second@x>\r\n\
        From: mallory@example.com\r\n\r\nhi\r\n",
    );
    assert_eq!(m.external_id.as_str(), "first@x");
    assert_eq!(m.contact.as_str(), "ana@example.com");
    assert_eq!(m.details.sender_name.as_deref(), Some("Ana"));
}

#[test]
fn a_recipient_written_as_an_smtp_path_is_the_same_endpoint() {
    let record =
        binary("email.received", Some("message/rfc822"), &[("ce_recipient", " <Support@Example.net> ")], REPLY);
    assert_eq!(decode_ok(&record).messages[0].endpoint.as_str(), "support@example.net");
}

#[test]
fn malformed_ids_are_read_or_ignored_and_never_refuse_the_mail() {
    let cases: [(&[u8], Option<&str>, &[&str]); 5] = [
        (b"From: a@x.com\r\nMessage-ID: <m1@x>\r\nIn-Reply-To: <yes>\r\n\r\nhi\r\n", Some("yes"), &[]),
        (b"From: a@x.com\r\nMessage-ID: bare@x.com\r\nIn-Reply-To: p@x.com\r\nReferences: r1@x r2@x\r\n\r\nhi\r\n", Some("p@x.com"), &["r1@x", "r2@x"]),
        (b"From: a@x.com\r\nMessage-ID: <m3@x> (mailer)\r\nIn-Reply-To: <p@x> (comment)\r\nReferences: <r1@x>\r\n (folded) <r2\r\n @x>\r\n\r\nhi\r\n", Some("p@x"), &["r1@x", "r2@x"]),
        (b"From: a@x.com\r\nMessage-ID: <m4@x>\r\nIn-Reply-To: your message of Monday\r\n\r\nhi\r\n", None, &[]),
        (b"From: a@x.com\r\nMessage-ID: <m5@x>\r\nIn-Reply-To: <\r\nReferences: <>\r\n\r\nhi\r\n", None, &[]),
    ];
    for (raw, in_reply_to, references) in cases {
        let m = email(raw);
        assert_eq!(m.in_reply_to.as_deref(), in_reply_to, "{}", String::from_utf8_lossy(raw));
        assert_eq!(m.references, references, "{}", String::from_utf8_lossy(raw));
    }
    assert_eq!(email(cases[1].0).external_id.as_str(), "bare@x.com", "a bare Message-ID is still the id");
    assert_eq!(email(cases[2].0).external_id.as_str(), "m3@x");
}
