//! Every rule of the decision table end to end, through the broker and
//! Postgres, with the agent desktop's SQL in between.

use crate::agent::*;
use crate::harness::TestEnv;

const SUPPORT: &str = "support@acme.example";
const SALES: &str = "sales@acme.example";
const ANA: &str = "ana@example.com";

async fn links(env: &TestEnv, kind: &str) -> Vec<(uuid::Uuid, uuid::Uuid)> {
    sqlx::query_as(
        "SELECT conversation_id, related_conversation_id FROM conversation_links WHERE kind = $1 ORDER BY 1, 2",
    )
    .bind(kind)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_email_replies_thread_by_in_reply_to_then_references_newest_first_from_any_address_under_any() {
    // Sender policy `any` (contract version 1): every reference resolves,
    // whoever sends it. The default, `participants`, is in sender_policy.rs.
    let env = TestEnv::with(2, |s| s.threading.reply_senders = "any".into()).await;
    env.publish(&mail(SUPPORT, "a1@example.com", ANA, None, &[], "")).await;
    env.publish(&mail(SUPPORT, "b1@example.com", "bob@example.com", None, &[], "")).await;
    env.run_to_end().await;
    let ana = conversation_of(&env.pool, "a1@example.com", SUPPORT).await;
    let bob = conversation_of(&env.pool, "b1@example.com", SUPPORT).await;

    // Ana's colleague answers in Ana's thread: R1 beats R3.
    env.publish(&mail(SUPPORT, "c1@example.com", "colleague@example.com", Some("a1@example.com"), &[], "")).await;
    // Unknown In-Reply-To; References newest first finds Bob's thread before Ana's.
    env.publish(&mail(
        SUPPORT,
        "c2@example.com",
        ANA,
        Some("nowhere@example.com"),
        &["a1@example.com", "b1@example.com"],
        "",
    ))
    .await;
    env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "c1@example.com", SUPPORT).await, ana);
    assert_eq!(conversation_of(&env.pool, "c2@example.com", SUPPORT).await, bob);
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, 2, "no conversation for the colleague");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_a_reply_to_an_agents_outbound_message_lands_in_its_conversation_and_only_at_that_endpoint() {
    let env = TestEnv::new(1).await;
    env.publish(&mail(SUPPORT, "a1@example.com", ANA, None, &[], "")).await;
    env.run_to_end().await;
    let conv = conversation_of(&env.pool, "a1@example.com", SUPPORT).await;
    agent_reply(&env.pool, conv, SUPPORT, ANA, "agent-1@acme.example").await;

    env.publish(&mail(SUPPORT, "a2@example.com", ANA, Some("agent-1@acme.example"), &[], "")).await;
    // The same reference at another inbox resolves to nothing there.
    env.publish(&mail(SALES, "a3@example.com", ANA, Some("agent-1@acme.example"), &[], "")).await;
    env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "a2@example.com", SUPPORT).await, conv);
    assert_ne!(conversation_of(&env.pool, "a3@example.com", SALES).await, conv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_a_messenger_reply_to_follows_its_mid() {
    let env = TestEnv::new(1).await;
    env.publish(&messenger("m_1", "111", "900", None)).await;
    env.run_to_end().await;
    let conv = conversation_of(&env.pool, "m_1", "900").await;
    // The page's other contact (a shared device) replies to the same message.
    env.publish(&messenger("m_2", "222", "900", Some("m_1"))).await;
    env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "m_2", "900").await, conv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_a_reply_to_a_closed_conversation_starts_one_follow_up_that_copies_form_queue_and_priority() {
    let env = TestEnv::new(1).await;
    env.publish(&mail(SUPPORT, "a1@example.com", ANA, None, &[], "")).await;
    env.run_to_end().await;
    let closed = conversation_of(&env.pool, "a1@example.com", SUPPORT).await;
    set_queue_priority_form(&env.pool, closed).await;
    set_status(&env.pool, closed, "closed").await;

    env.publish(&mail(SUPPORT, "a2@example.com", ANA, Some("a1@example.com"), &[], "")).await;
    env.publish(&mail(SUPPORT, "a3@example.com", ANA, Some("a1@example.com"), &["a1@example.com"], "")).await;
    env.run_to_end().await;
    let follow_up = conversation_of(&env.pool, "a2@example.com", SUPPORT).await;
    assert_ne!(follow_up, closed);
    assert_eq!(
        conversation_of(&env.pool, "a3@example.com", SUPPORT).await,
        follow_up,
        "the second reply joins the follow-up"
    );
    assert_eq!(status_of(&env.pool, closed).await, "closed", "never reopened");
    assert_eq!(links(&env, "follow_up").await, vec![(follow_up, closed)], "exactly one link (I3)");
    let copied: (String, String, serde_json::Value) =
        sqlx::query_as("SELECT queue, priority, form FROM conversations WHERE id = $1")
            .bind(follow_up)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((copied.0.as_str(), copied.1.as_str()), ("returns", "high"));
    assert_eq!(copied.2["form"], "damage");
    assert_eq!(env.count(&format!("SELECT count(*) FROM conversation_events WHERE conversation_id = '{follow_up}' AND kind = 'follow_up_started' AND related_conversation_id = '{closed}'")).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_a_messenger_reply_to_a_message_of_a_closed_conversation_starts_a_follow_up() {
    // The window is off, so only the reply_to can make it a follow-up.
    let env = TestEnv::with(1, |s| s.placement.messenger_follow_up_window = std::time::Duration::ZERO).await;
    env.publish(&messenger("m_1", "111", "900", None)).await;
    env.run_to_end().await;
    let closed = conversation_of(&env.pool, "m_1", "900").await;
    set_status(&env.pool, closed, "closed").await;
    env.publish(&messenger("m_2", "111", "900", Some("m_1"))).await;
    env.publish(&messenger("m_3", "111", "900", None)).await;
    env.run_to_end().await;
    let follow_up = conversation_of(&env.pool, "m_2", "900").await;
    assert_ne!(follow_up, closed);
    assert_eq!(conversation_of(&env.pool, "m_3", "900").await, follow_up, "later messages join it by pair");
    assert_eq!(links(&env, "follow_up").await, vec![(follow_up, closed)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_when_the_pair_already_has_an_ongoing_conversation_the_reply_lands_there_and_is_linked() {
    let env = TestEnv::new(1).await;
    env.publish(&mail(SUPPORT, "a1@example.com", ANA, None, &[], "")).await;
    env.run_to_end().await;
    let closed = conversation_of(&env.pool, "a1@example.com", SUPPORT).await;
    set_status(&env.pool, closed, "closed").await;
    env.publish(&mail(SUPPORT, "n1@example.com", ANA, None, &[], "")).await;
    env.run_to_end().await;
    let ongoing = conversation_of(&env.pool, "n1@example.com", SUPPORT).await;
    set_status(&env.pool, ongoing, "waiting").await;

    env.publish(&mail(SUPPORT, "a2@example.com", ANA, Some("a1@example.com"), &[], "")).await;
    env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "a2@example.com", SUPPORT).await, ongoing);
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, 2, "no second conversation");
    assert_eq!(links(&env, "follow_up").await, vec![(ongoing, closed)]);
    assert_eq!(status_of(&env.pool, ongoing).await, "open", "R5 applies too");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM conversation_events WHERE conversation_id = '{ongoing}' AND kind = 'linked'"
        ))
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r4_sms_and_messenger_within_their_window_start_a_follow_up_and_the_window_is_per_channel() {
    // SMS window off, Messenger on.
    let env = TestEnv::with(1, |s| s.placement.sms_follow_up_window = std::time::Duration::ZERO).await;
    env.publish(&sms("s1", "385916242493", "800", "first")).await;
    env.publish(&messenger("m_1", "111", "900", None)).await;
    env.run_to_end().await;
    let sms_closed = conversation_of(&env.pool, "s1", "800").await;
    let fb_closed = conversation_of(&env.pool, "m_1", "900").await;
    set_status(&env.pool, sms_closed, "closed").await;
    set_status(&env.pool, fb_closed, "closed").await;

    env.publish(&sms("s2", "00385916242493", "800", "again")).await;
    env.publish(&messenger("m_2", "111", "900", None)).await;
    env.run_to_end().await;
    let sms_new = conversation_of(&env.pool, "s2", "800").await;
    let fb_new = conversation_of(&env.pool, "m_2", "900").await;
    assert!(sms_new != sms_closed && fb_new != fb_closed);
    assert_eq!(links(&env, "follow_up").await, vec![(fb_new, fb_closed)], "only Messenger's window is open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r5_waiting_and_solved_reopen_pending_stays_and_each_reopen_is_audited() {
    let env = TestEnv::new(1).await;
    for (n, contact) in ["1", "2", "3"].iter().enumerate() {
        env.publish(&sms(&format!("first-{n}"), contact, "800", "hi")).await;
    }
    env.run_to_end().await;
    let convs = [
        conversation_of(&env.pool, "first-0", "800").await,
        conversation_of(&env.pool, "first-1", "800").await,
        conversation_of(&env.pool, "first-2", "800").await,
    ];
    for (conv, status) in convs.iter().zip(["waiting", "solved", "pending"]) {
        set_status(&env.pool, *conv, status).await;
    }
    for (n, contact) in ["1", "2", "3"].iter().enumerate() {
        env.publish(&sms(&format!("second-{n}"), contact, "800", "any news?")).await;
    }
    let stats = env.run_to_end().await;
    assert_eq!(stats.reopens, 2, "the reopens counter (/metrics switchboard_reopens_total)");
    assert_eq!(status_of(&env.pool, convs[0]).await, "open");
    assert_eq!(status_of(&env.pool, convs[1]).await, "open");
    assert_eq!(status_of(&env.pool, convs[2]).await, "pending");
    assert_eq!(env.count("SELECT count(*) FROM conversation_events WHERE kind = 'reopened' AND to_status = 'open' AND from_status IN ('waiting', 'solved')").await, 2);
    assert_eq!(env.count("SELECT count(*) FROM conversation_events WHERE kind = 'reopened'").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r5_the_statuses_that_reopen_are_configurable() {
    let env = TestEnv::with(1, |s| s.placement.reopen_statuses = vec!["pending".into()]).await;
    env.publish(&sms("a", "1", "800", "hi")).await;
    env.publish(&sms("b", "2", "800", "hi")).await;
    env.run_to_end().await;
    let (pending, waiting) =
        (conversation_of(&env.pool, "a", "800").await, conversation_of(&env.pool, "b", "800").await);
    set_status(&env.pool, pending, "pending").await;
    set_status(&env.pool, waiting, "waiting").await;
    env.publish(&sms("a2", "1", "800", "hi")).await;
    env.publish(&sms("b2", "2", "800", "hi")).await;
    env.run_to_end().await;
    assert_eq!(status_of(&env.pool, pending).await, "open");
    assert_eq!(status_of(&env.pool, waiting).await, "waiting");
}

/// Each automatic-mail marker of the contract.
const MARKERS: [(&str, &str); 7] = [
    ("auto-submitted", "Auto-Submitted: auto-replied\r\n"),
    ("precedence-bulk", "Precedence: bulk\r\n"),
    ("precedence-junk", "Precedence: junk\r\n"),
    ("precedence-list", "Precedence: list\r\n"),
    ("x-autoreply", "X-Autoreply: yes\r\n"),
    ("x-autorespond", "X-Autorespond: vacation\r\n"),
    ("dsn", "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r6_automatic_mail_of_every_kind_never_reopens_and_never_starts_or_links_a_follow_up() {
    let env = TestEnv::new(2).await;
    for (n, _) in MARKERS.iter().enumerate() {
        env.publish(&mail(SUPPORT, &format!("solved-{n}@x"), &format!("c{n}@example.com"), None, &[], "")).await;
        env.publish(&mail(SUPPORT, &format!("closed-{n}@x"), &format!("d{n}@example.com"), None, &[], "")).await;
    }
    env.run_to_end().await;
    for (n, _) in MARKERS.iter().enumerate() {
        set_status(&env.pool, conversation_of(&env.pool, &format!("solved-{n}@x"), SUPPORT).await, "solved").await;
        set_status(&env.pool, conversation_of(&env.pool, &format!("closed-{n}@x"), SUPPORT).await, "closed").await;
    }
    let conversations_before = env.count("SELECT count(*) FROM conversations").await;
    for (n, (name, header)) in MARKERS.iter().enumerate() {
        env.publish(&mail(SUPPORT, &format!("auto-s-{name}@x"), &format!("c{n}@example.com"), None, &[], header)).await;
        env.publish(&mail(
            SUPPORT,
            &format!("auto-c-{name}@x"),
            &format!("d{n}@example.com"),
            Some(&format!("closed-{n}@x")),
            &[],
            header,
        ))
        .await;
    }
    env.run_to_end().await;
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE auto_generated").await, 14, "every marker is recognised");
    assert_eq!(env.count("SELECT count(*) FROM conversations WHERE status = 'solved'").await, 7, "none reopened");
    assert_eq!(env.count("SELECT count(*) FROM conversation_events WHERE kind = 'reopened'").await, 0);
    assert_eq!(env.count("SELECT count(*) FROM conversation_links").await, 0, "no follow-up linked");
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, conversations_before, "no follow-up started");
    for (n, (name, _)) in MARKERS.iter().enumerate() {
        let closed = conversation_of(&env.pool, &format!("closed-{n}@x"), SUPPORT).await;
        assert_eq!(
            conversation_of(&env.pool, &format!("auto-c-{name}@x"), SUPPORT).await,
            closed,
            "{name}: filed with what it answers"
        );
        assert_eq!(status_of(&env.pool, closed).await, "closed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_are_followed_through_chains_and_a_closed_merge_target_gets_a_follow_up() {
    let env = TestEnv::new(1).await;
    env.publish(&sms("a1", "1", "800", "a")).await;
    env.publish(&sms("b1", "2", "800", "b")).await;
    env.publish(&sms("c1", "3", "800", "c")).await;
    env.run_to_end().await;
    let (a, b, c) = (
        conversation_of(&env.pool, "a1", "800").await,
        conversation_of(&env.pool, "b1", "800").await,
        conversation_of(&env.pool, "c1", "800").await,
    );
    merge(&env.pool, a, b).await;
    merge(&env.pool, b, c).await;
    env.publish(&sms("a2", "1", "800", "a again")).await;
    env.publish(&sms("b2", "2", "800", "b again")).await;
    env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "a2", "800").await, c, "A -> B -> C");
    assert_eq!(conversation_of(&env.pool, "b2", "800").await, c);
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, 3);

    // The merge target is closed: A's pair has no ongoing conversation left,
    // and the SMS window makes the new one a follow-up of the chain's end.
    set_status(&env.pool, c, "closed").await;
    env.publish(&sms("a3", "1", "800", "a once more")).await;
    env.run_to_end().await;
    let a3 = conversation_of(&env.pool, "a3", "800").await;
    assert!(![a, b, c].contains(&a3));
    assert_eq!(links(&env, "follow_up").await, vec![(a3, c)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_reply_to_a_merged_conversation_lands_in_the_merge_target() {
    // A reply from an address of its own, so that only the reference (not
    // the pair) can place it: every reference resolves under `any`.
    let env = TestEnv::with(1, |s| s.threading.reply_senders = "any".into()).await;
    env.publish(&mail(SUPPORT, "a1@example.com", ANA, None, &[], "")).await;
    env.publish(&mail(SUPPORT, "b1@example.com", "bob@example.com", None, &[], "")).await;
    env.run_to_end().await;
    let (a, b) = (
        conversation_of(&env.pool, "a1@example.com", SUPPORT).await,
        conversation_of(&env.pool, "b1@example.com", SUPPORT).await,
    );
    merge(&env.pool, a, b).await;
    env.publish(&mail(SUPPORT, "a2@example.com", "someone@example.com", Some("a1@example.com"), &[], "")).await;
    env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "a2@example.com", SUPPORT).await, b);
    assert_eq!(env.count("SELECT count(*) FROM conversation_links").await, 0, "a merge is not a close: no follow-up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_added_channel_leads_its_pair_to_that_conversation() {
    let env = TestEnv::new(1).await;
    env.publish(&mail(SUPPORT, "a1@example.com", ANA, None, &[], "")).await;
    env.run_to_end().await;
    let conv = conversation_of(&env.pool, "a1@example.com", SUPPORT).await;
    add_channel(&env.pool, conv, "sms", "800", "385916242493").await;
    env.publish(&sms("s1", "+385 91 624 2493", "800", "it's me, Ana")).await;
    env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "s1", "800").await, conv);
}
