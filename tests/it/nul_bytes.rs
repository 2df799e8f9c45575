//! Postgres refuses U+0000 in text and jsonb. Mail that carries one (a NUL
//! in the body, a UTF-16 body labelled us-ascii, `=00` in an encoded subject
//! or attachment name) and an SMS with `\u0000` are placed, not
//! dead-lettered: the decoded fields lose the NULs, `details.nul_removed`
//! says which, and `raw` keeps every byte.

use crate::harness::TestEnv;
use switchboard_load::sample::{binary, email};

const SUPPORT: &str = "support@acme.example";

fn mails() -> Vec<(&'static str, Vec<u8>)> {
    let head = |id: &str, subject: &str, extra: &str| {
        format!("From: Ana <ana@example.com>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n{extra}")
    };
    let mut utf16 =
        head("utf16@example.com", "hello", "Content-Type: text/plain; charset=us-ascii\r\n\r\n").into_bytes();
    utf16.extend("My parcel is late".encode_utf16().flat_map(u16::to_le_bytes));
    vec![
        (
            "body@example.com",
            format!("{}\r\nbefore\0after\r\n", head("body@example.com", "nul in body", "")).into_bytes(),
        ),
        ("utf16@example.com", utf16),
        (
            "subject@example.com",
            format!("{}\r\nhi\r\n", head("subject@example.com", "=?utf-8?Q?Order=00_1182?=", "")).into_bytes(),
        ),
        (
            "attachment@example.com",
            format!(
                "{}\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: application/pdf\r\n\
                 Content-Disposition: attachment; filename=\"=?utf-8?Q?invoice=00.pdf?=\"\r\n\r\n%PDF\r\n--b--\r\n",
                head("attachment@example.com", "invoice", "Content-Type: multipart/mixed; boundary=b\r\n")
            )
            .into_bytes(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_and_sms_with_nul_bytes_are_placed_with_the_nuls_removed_and_noted() {
    let env = TestEnv::new(1).await;
    for (id, raw) in mails() {
        env.publish(&binary("email", "email.received", id, "message/rfc822", &[("recipient", SUPPORT)], &raw)).await;
    }
    let sms = r#"{"results":[{"messageId":"nul-sms","from":"385916242493","to":"800","text":"nul \u0000 byte","receivedAt":"2026-11-25T07:00:00.000+0000"}]}"#;
    env.publish(&binary("sms", "sms.received", "s1", "application/json", &[], sms.as_bytes())).await;
    // An ordinary mail after them still lands: the partition did not stall.
    env.publish(&email(SUPPORT, "after", "From: bob@example.com\r\nMessage-ID: <after@example.com>\r\n\r\nhi\r\n"))
        .await;

    let stats = env.run_to_end().await;
    assert_eq!(stats.records_dead_lettered, 0, "{:?}", stats.dead_letters_by_reason);
    assert_eq!(stats.records_applied, 6);
    let text = |sql: &str| {
        let pool = env.pool.clone();
        let sql = sql.to_owned();
        async move { sqlx::query_scalar::<_, String>(&sql).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(text("SELECT body_text FROM messages WHERE external_id = 'body@example.com'").await, "beforeafter\r\n");
    assert!(text("SELECT body_text FROM messages WHERE external_id = 'utf16@example.com'")
        .await
        .starts_with("My parcel is late"));
    assert_eq!(text("SELECT subject FROM messages WHERE external_id = 'subject@example.com'").await, "Order 1182");
    assert_eq!(
        text("SELECT details #>> '{attachments,0,name}' FROM messages WHERE external_id = 'attachment@example.com'")
            .await,
        "invoice.pdf"
    );
    assert_eq!(text("SELECT body_text FROM messages WHERE external_id = 'nul-sms'").await, "nul  byte");
    assert_eq!(
        env.count("SELECT count(*) FROM messages WHERE details ? 'nul_removed'").await,
        5,
        "each cleaned message says so"
    );
    // The raw source keeps the NUL byte.
    assert_eq!(
        env.count("SELECT count(*) FROM messages WHERE external_id = 'body@example.com' AND position('\\x00'::bytea in raw) > 0").await,
        1
    );
    assert!(env.dead_letters().is_empty());
}
