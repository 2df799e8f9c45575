//! Issue 19, item 3: who may join a conversation by replying to one of its
//! emails (`threading.reply_senders`). Message-IDs leak, so a forged
//! `In-Reply-To` must not put a stranger's words into another customer's
//! conversation; a colleague who was addressed may join.

use crate::agent::{conversation_of, mail, related};
use crate::flow::json_logs;
use crate::harness::{free_port, TestEnv};
use std::time::Duration;
use switchboard::http::{fetch, sample};
use uuid::Uuid;

const SUPPORT: &str = "support@acme.example";
const ANA: &str = "ana@example.com";

/// Ana writes to support with Bob in `Cc`; returns her conversation.
async fn anas_thread(env: &TestEnv) -> Uuid {
    env.publish(&mail(SUPPORT, "a1@example.com", ANA, None, &[], "Cc: Bob <Bob@Example.com>\r\n")).await;
    env.run_to_end().await;
    conversation_of(&env.pool, "a1@example.com", SUPPORT).await
}

/// A reply to Ana's first message from `from`.
fn reply(id: &str, from: &str) -> switchboard_load::sample::SampleRecord {
    mail(SUPPORT, id, from, Some("a1@example.com"), &["a1@example.com"], "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_in_reply_to_starts_its_own_conversation_linked_to_the_referenced_one_and_is_counted() {
    let port = free_port();
    let env = TestEnv::with(1, |s| s.http.addr = format!("127.0.0.1:{port}")).await;
    let thread = anas_thread(&env).await;

    env.publish(&reply("m1@evil.example", "mallory@evil.example")).await;
    env.publish(&reply("b1@example.com", "bob@example.com")).await;
    let running = env.start_worker(&env.settings);
    env.wait_for_messages(3, Duration::from_secs(60)).await;
    // The refusal is counted where operators look.
    let addr = format!("127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let refusals = loop {
        let scraped = fetch(&addr, "/metrics")
            .await
            .ok()
            .and_then(|(_, body)| sample(&body, "switchboard_sender_policy_refusals_total").filter(|n| *n >= 1.0));
        if let Some(n) = scraped {
            break n;
        }
        assert!(tokio::time::Instant::now() < deadline, "the refusal never reached /metrics");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    running.stop().await;
    assert_eq!(refusals, 1.0);

    let mallory = conversation_of(&env.pool, "m1@evil.example", SUPPORT).await;
    assert_ne!(mallory, thread, "a stranger's words stay out of Ana's conversation");
    assert_eq!(related(&env).await, vec![(mallory, thread)], "linked once, so the agent sees the context");
    assert_eq!(conversation_of(&env.pool, "b1@example.com", SUPPORT).await, thread, "Bob was in Cc: he joins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipients_of_the_desks_outbound_message_become_participants() {
    let env = TestEnv::new(1).await;
    let thread = anas_thread(&env).await;
    // The agent desktop answers Ana and copies Carol: an outbound row with
    // its recipients in `details` (docs/contract.md, "Outbound messages").
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, channel, direction, endpoint, contact, external_id, body_text,
                               received_at, details)
         VALUES ($1, $2, 'email', 'outbound', $3, $4, 'agent-1@acme.example', 'On it.', now(),
                 jsonb_build_object('to', jsonb_build_array($4), 'cc', jsonb_build_array('carol@partner.example')))",
    )
    .bind(Uuid::new_v4())
    .bind(thread)
    .bind(SUPPORT)
    .bind(ANA)
    .execute(&env.pool)
    .await
    .expect("the desk's outbound message");
    env.publish(&mail(SUPPORT, "c1@partner.example", "carol@partner.example", Some("agent-1@acme.example"), &[], ""))
        .await;
    env.publish(&mail(SUPPORT, "d1@partner.example", "dan@partner.example", Some("agent-1@acme.example"), &[], ""))
        .await;
    let stats = env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "c1@partner.example", SUPPORT).await, thread, "Carol was copied");
    assert_ne!(conversation_of(&env.pool, "d1@partner.example", SUPPORT).await, thread, "Dan was not");
    assert_eq!(stats.sender_refusals, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_domain_a_sender_from_a_participants_domain_joins_and_a_stranger_does_not() {
    let env = TestEnv::with(1, |s| s.threading.reply_senders = "domain".into()).await;
    let thread = anas_thread(&env).await;
    env.publish(&reply("e1@example.com", "erin@example.com")).await;
    env.publish(&reply("m1@evil.example", "mallory@evil.example")).await;
    let stats = env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "e1@example.com", SUPPORT).await, thread);
    assert_ne!(conversation_of(&env.pool, "m1@evil.example", SUPPORT).await, thread);
    assert_eq!(stats.sender_refusals, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_is_set_per_inbox_and_through_the_environment() {
    let env = TestEnv::new(1).await;
    let thread = anas_thread(&env).await;
    env.publish(&reply("m1@evil.example", "mallory@evil.example")).await;
    // `any` from the environment, as an operator sets it, for every inbox...
    let out = env
        .worker_command(&["--json-logs", "run", "--stop-at-end"])
        .env("SWITCHBOARD__THREADING__REPLY_SENDERS", "any")
        .output()
        .await
        .expect("run the worker");
    assert!(out.status.success(), "{:?}", json_logs(&out.stderr));
    assert_eq!(conversation_of(&env.pool, "m1@evil.example", SUPPORT).await, thread, "any: every reference resolves");

    // ...and `participants` for this inbox alone, over a default of `any`.
    let mut settings = env.settings.clone();
    settings.threading.reply_senders = "any".into();
    settings.threading.reply_senders_by_endpoint = [(SUPPORT.to_owned(), "participants".to_owned())].into();
    env.publish(&reply("m2@evil.example", "mallory2@evil.example")).await;
    env.run_to_end_with(&settings).await;
    assert_ne!(conversation_of(&env.pool, "m2@evil.example", SUPPORT).await, thread);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_from_a_mail_system_lands_with_the_mail_system_and_is_linked_to_the_thread() {
    let env = TestEnv::new(1).await;
    let thread = anas_thread(&env).await;
    let bounce = "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n";
    for n in 0..2 {
        env.publish(&mail(
            SUPPORT,
            &format!("bounce-{n}@mx.example.net"),
            "MAILER-DAEMON@mx.example.net",
            Some("a1@example.com"),
            &[],
            bounce,
        ))
        .await;
    }
    let stats = env.run_to_end().await;
    let daemon = conversation_of(&env.pool, "bounce-0@mx.example.net", SUPPORT).await;
    assert_ne!(daemon, thread);
    assert_eq!(conversation_of(&env.pool, "bounce-1@mx.example.net", SUPPORT).await, daemon, "R3: its own pair");
    assert_eq!(related(&env).await, vec![(daemon, thread)], "linked once, for both");
    assert_eq!(stats.sender_refusals, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_of_a_conversation_merged_into_the_thread_may_reply_to_it() {
    let env = TestEnv::new(1).await;
    let thread = anas_thread(&env).await;
    env.publish(&mail(SUPPORT, "al1@example.org", "alice@example.org", None, &[], "")).await;
    env.run_to_end().await;
    let alices = conversation_of(&env.pool, "al1@example.org", SUPPORT).await;
    crate::agent::merge(&env.pool, alices, thread).await;
    // Alice answers a message of Ana's thread she never saw addressed to her:
    // her own conversation now leads there, so she took part in it.
    env.publish(&reply("al2@example.org", "alice@example.org")).await;
    let stats = env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "al2@example.org", SUPPORT).await, thread);
    assert_eq!(stats.sender_refusals, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_message_of_the_same_batch_is_admitted_as_it_would_be_in_the_next_one() {
    for same_batch in [true, false] {
        let env = TestEnv::new(1).await;
        let thread = anas_thread(&env).await;
        // Ana writes again in her thread; Bob (in Cc on her first message)
        // answers that new message only.
        env.publish(&mail(SUPPORT, "a2@example.com", ANA, Some("a1@example.com"), &[], "")).await;
        if !same_batch {
            env.run_to_end().await;
        }
        env.publish(&mail(SUPPORT, "b2@example.com", "bob@example.com", Some("a2@example.com"), &[], "")).await;
        let stats = env.run_to_end().await;
        assert_eq!(conversation_of(&env.pool, "b2@example.com", SUPPORT).await, thread, "same batch: {same_batch}");
        assert_eq!(stats.sender_refusals, 0, "same batch: {same_batch}");
    }
}
