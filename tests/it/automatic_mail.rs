//! R6 for the automatic mail real traffic brings besides RFC 3834 markers:
//! read receipts (RFC 8098) and bounces that are not DSNs, from the null
//! sender or a mail-system mailbox. They are stored where they belong, never
//! reopen and never start or link a follow-up.

use crate::agent::*;
use crate::harness::TestEnv;

const SUPPORT: &str = "support@acme.example";

/// (name, From mailbox or None for the customer, extra header lines)
const KINDS: [(&str, Option<&str>, &str); 4] = [
    (
        "read-receipt",
        None,
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"b\"\r\n",
    ),
    ("null-sender", None, "Return-Path: <>\r\n"),
    ("mailer-daemon", Some("MAILER-DAEMON@mx.example.net"), ""),
    ("postmaster", Some("postmaster@example.net"), ""),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_receipts_and_bounces_never_reopen_and_never_start_a_follow_up() {
    // Bounces come from mail systems, which never took part in the
    // conversation: under the default sender policy they land in the mail
    // system's own conversation, linked to the thread (sender_policy.rs).
    // This test is about R6, so every reference resolves here.
    let env = TestEnv::with(2, |s| s.threading.reply_senders = "any".into()).await;
    for (n, _) in KINDS.iter().enumerate() {
        env.publish(&mail(SUPPORT, &format!("solved-{n}@x"), &format!("c{n}@example.com"), None, &[], "")).await;
        env.publish(&mail(SUPPORT, &format!("closed-{n}@x"), &format!("d{n}@example.com"), None, &[], "")).await;
    }
    env.run_to_end().await;
    for (n, _) in KINDS.iter().enumerate() {
        set_status(&env.pool, conversation_of(&env.pool, &format!("solved-{n}@x"), SUPPORT).await, "solved").await;
        set_status(&env.pool, conversation_of(&env.pool, &format!("closed-{n}@x"), SUPPORT).await, "closed").await;
    }
    let conversations_before = env.count("SELECT count(*) FROM conversations").await;
    for (n, (name, sender, header)) in KINDS.iter().enumerate() {
        let to_solved = sender.map_or(format!("c{n}@example.com"), str::to_owned);
        let to_closed = sender.map_or(format!("d{n}@example.com"), str::to_owned);
        let solved = format!("solved-{n}@x");
        let closed = format!("closed-{n}@x");
        env.publish(&mail(SUPPORT, &format!("auto-s-{name}@x"), &to_solved, Some(&solved), &[], header)).await;
        env.publish(&mail(SUPPORT, &format!("auto-c-{name}@x"), &to_closed, Some(&closed), &[], header)).await;
    }
    let stats = env.run_to_end().await;
    assert_eq!(stats.records_dead_lettered, 0);
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE auto_generated").await, 8, "every kind is recognised");
    assert_eq!(env.count("SELECT count(*) FROM conversations WHERE status = 'solved'").await, 4, "none reopened");
    assert_eq!(env.count("SELECT count(*) FROM conversation_events WHERE kind = 'reopened'").await, 0);
    assert_eq!(env.count("SELECT count(*) FROM conversation_links").await, 0, "no follow-up linked");
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, conversations_before, "no follow-up started");
    for (n, (name, _, _)) in KINDS.iter().enumerate() {
        let solved = conversation_of(&env.pool, &format!("solved-{n}@x"), SUPPORT).await;
        let closed = conversation_of(&env.pool, &format!("closed-{n}@x"), SUPPORT).await;
        assert_eq!(conversation_of(&env.pool, &format!("auto-s-{name}@x"), SUPPORT).await, solved, "{name}");
        assert_eq!(conversation_of(&env.pool, &format!("auto-c-{name}@x"), SUPPORT).await, closed, "{name}");
    }
}
