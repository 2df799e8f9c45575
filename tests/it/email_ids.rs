//! Email identifiers as real mail writes them: every In-Reply-To id counts,
//! the first of repeated Message-ID and From headers counts, a recipient
//! written as an SMTP path is the same inbox, and malformed ids resolve or
//! are ignored, never dead-lettered.

use crate::agent::conversation_of;
use crate::harness::TestEnv;
use switchboard_load::sample::email;

const SUPPORT: &str = "support@acme.example";

fn raw(headers: &str) -> String {
    format!("{headers}Subject: About my order\r\nDate: Wed, 25 Nov 2026 08:00:00 +0100\r\n\r\nHello\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_ids_as_real_mail_writes_them_thread_and_nothing_is_dead_lettered() {
    // About reading ids, not about who may reply: every reference resolves.
    let env = TestEnv::with(1, |s| s.threading.reply_senders = "any".into()).await;
    env.publish(&email(SUPPORT, "e1", &raw("From: Ana <ana@example.com>\r\nMessage-ID: <a1@example.com>\r\n"))).await;
    env.publish(&email(SUPPORT, "e2", &raw("From: Bob <bob@example.com>\r\nMessage-ID: <b1@example.com>\r\n"))).await;
    env.run_to_end().await;
    let ana = conversation_of(&env.pool, "a1@example.com", SUPPORT).await;
    let bob = conversation_of(&env.pool, "b1@example.com", SUPPORT).await;

    // A colleague answers with two parents: the first unknown, the second Ana's.
    env.publish(&email(
        SUPPORT,
        "e3",
        &raw("From: colleague@example.org\r\nMessage-ID: <c1@example.org>\r\nIn-Reply-To: <unknown@x> <a1@example.com>\r\n"),
    ))
    .await;
    // Two Message-ID and two From headers: the first of each counts.
    env.publish(&email(
        SUPPORT,
        "e4",
        &raw("From: bob@example.com\r\nMessage-ID: <b2@example.com>\r\nMessage-ID: <b2-copy@example.com>\r\nFrom: ana@example.com\r\n"),
    ))
    .await;
    // The recipient as an SMTP path: Ana's inbox all the same.
    env.publish(&email(
        "<Support@Acme.example>",
        "e5",
        &raw("From: ana@example.com\r\nMessage-ID: <a2@example.com>\r\n"),
    ))
    .await;
    // Malformed ids: a bare In-Reply-To resolves; `<yes>`, prose and an
    // unclosed bracket are ignored; nothing is dead-lettered.
    env.publish(&email(
        SUPPORT,
        "e6",
        &raw("From: carol@example.net\r\nMessage-ID: <d1@example.net>\r\nIn-Reply-To: b1@example.com\r\n"),
    ))
    .await;
    env.publish(&email(
        SUPPORT,
        "e7",
        &raw(
            "From: dan@example.net\r\nMessage-ID: <e1@example.net> (mailer)\r\nIn-Reply-To: <yes>\r\nReferences: <\r\n",
        ),
    ))
    .await;
    env.publish(&email(
        SUPPORT,
        "e8",
        &raw("From: eve@example.net\r\nMessage-ID: <f1@example.net>\r\nIn-Reply-To: Your message of Monday\r\nReferences: <r1@x>\r\n (folded) <a1@exa\r\n mple.com>\r\n"),
    ))
    .await;

    let stats = env.run_to_end().await;
    assert_eq!(stats.records_dead_lettered, 0, "{:?}", stats.dead_letters_by_reason);
    assert_eq!(conversation_of(&env.pool, "c1@example.org", SUPPORT).await, ana, "the second In-Reply-To id");
    assert_eq!(conversation_of(&env.pool, "b2@example.com", SUPPORT).await, bob, "the first From is Bob");
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE external_id = 'b2-copy@example.com'").await, 0);
    assert_eq!(conversation_of(&env.pool, "a2@example.com", SUPPORT).await, ana, "<Support@Acme.example> is support");
    assert_eq!(conversation_of(&env.pool, "d1@example.net", SUPPORT).await, bob, "a bare In-Reply-To resolves");
    assert_eq!(conversation_of(&env.pool, "f1@example.net", SUPPORT).await, ana, "a folded reference resolves");
    let dan = conversation_of(&env.pool, "e1@example.net", SUPPORT).await;
    assert!(![ana, bob].contains(&dan), "<yes> resolves to nothing: a conversation of its own");
    assert_eq!(env.count("SELECT count(DISTINCT endpoint) FROM messages").await, 1);
}
