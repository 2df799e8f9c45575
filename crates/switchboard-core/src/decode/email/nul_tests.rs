//! NUL characters in mail (`crate::decode::nul`): removed from text,
//! replaced in ids, noted in `details.nul_removed`, kept in `raw`.

use super::tests::email;

#[test]
fn a_nul_byte_in_body_and_subject_is_removed_and_noted() {
    let raw = b"From: ana@example.com\r\nSubject: a\x00b\r\nMessage-ID: <nul@example.com>\r\n\r\nbefore\x00after\r\n";
    let message = email(raw);
    assert_eq!(message.body_text, "beforeafter\r\n");
    assert_eq!(message.subject.as_deref(), Some("ab"));
    assert_eq!(message.details.nul_removed, ["subject", "body_text"]);
    assert_eq!(message.raw.as_deref(), Some(&raw[..]), "the raw source keeps every byte");
}

#[test]
fn a_utf16_body_labelled_us_ascii_becomes_readable_text() {
    let mut raw = b"From: ana@example.com\r\nSubject: hi\r\nMessage-ID: <u16@example.com>\r\n\
        MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        .to_vec();
    raw.extend("Hello support".encode_utf16().flat_map(u16::to_le_bytes));
    let message = email(&raw);
    assert!(!message.body_text.contains('\0'), "{:?}", message.body_text);
    assert!(message.body_text.starts_with("Hello support"), "{:?}", message.body_text);
    assert_eq!(message.details.nul_removed, ["body_text"]);
}

#[test]
fn an_encoded_nul_in_the_subject_and_an_attachment_name_is_removed() {
    let raw = b"From: ana@example.com\r\nSubject: =?utf-8?Q?Order=00_1182?=\r\nMessage-ID: <enc@example.com>\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
        --b\r\nContent-Type: application/pdf\r\n\
        Content-Disposition: attachment; filename=\"=?utf-8?Q?invoice=00.pdf?=\"\r\n\r\n%PDF\r\n--b--\r\n";
    let message = email(raw);
    assert_eq!(message.subject.as_deref(), Some("Order 1182"));
    assert_eq!(message.details.attachments[0].name.as_deref(), Some("invoice.pdf"));
    assert_eq!(message.details.nul_removed, ["subject", "attachment name"]);
}

#[test]
fn a_nul_in_a_message_id_becomes_a_replacement_character_on_both_sides_of_a_reply() {
    let parent = email(b"From: ana@example.com\r\nMessage-ID: <a\x00b@example.com>\r\n\r\nhi\r\n");
    let reply = email(
        b"From: ana@example.com\r\nMessage-ID: <r@example.com>\r\nIn-Reply-To: <a\x00b@example.com>\r\n\r\nhi\r\n",
    );
    assert_eq!(parent.external_id.as_str(), "a\u{FFFD}b@example.com");
    assert_eq!(reply.in_reply_to.as_deref(), Some(parent.external_id.as_str()));
}
