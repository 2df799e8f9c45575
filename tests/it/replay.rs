//! I4: consuming the topics again, with a new group, after agents closed and
//! merged conversations, changes no row, for every rule.

use crate::agent::*;
use crate::harness::TestEnv;

const SUPPORT: &str = "support@acme.example";
const SALES: &str = "sales@acme.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_agents_closed_and_merged_changes_nothing_for_any_rule() {
    let env = TestEnv::new(3).await;
    // R4, then R7 siblings (two inboxes), then R1.
    env.publish(&mail(SUPPORT, "t1@example.com", "ana@example.com", None, &[], "")).await;
    env.publish(&mail(SALES, "t1@example.com", "ana@example.com", None, &[], "")).await;
    env.publish(&sms("s1", "1", "800", "hi")).await;
    env.publish(&sms("s2", "2", "800", "hi")).await;
    env.publish(&messenger("m1", "7", "900", None)).await;
    env.run_to_end().await;
    env.publish(&mail(SUPPORT, "t2@example.com", "ana@example.com", Some("t1@example.com"), &[], "")).await;
    env.run_to_end().await;

    let ana = conversation_of(&env.pool, "t1@example.com", SUPPORT).await;
    let (s1, s2) = (conversation_of(&env.pool, "s1", "800").await, conversation_of(&env.pool, "s2", "800").await);
    let m1 = conversation_of(&env.pool, "m1", "900").await;
    set_status(&env.pool, ana, "closed").await;
    merge(&env.pool, s1, s2).await;
    set_status(&env.pool, m1, "solved").await;

    // R2 follow-up, R3 through a merge, R5 reopen, R6 automatic reply, R4 window follow-up.
    env.publish(&mail(SUPPORT, "t3@example.com", "ana@example.com", Some("t2@example.com"), &[], "")).await;
    env.publish(&sms("s3", "1", "800", "again")).await;
    env.publish(&messenger("m2", "7", "900", Some("m1"))).await;
    env.publish(&mail(SALES, "auto@example.com", "ana@example.com", None, &[], "Auto-Submitted: auto-replied\r\n"))
        .await;
    env.run_to_end().await;
    set_status(&env.pool, s2, "closed").await;
    env.publish(&sms("s4", "2", "800", "after close")).await;
    env.run_to_end().await;

    let rules: Vec<String> = sqlx::query_scalar("SELECT DISTINCT kind FROM conversation_events ORDER BY 1")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        rules,
        ["created", "follow_up_started", "linked", "reopened"],
        "the scenario exercises every kind of change"
    );

    // Agents keep working; then ops replay everything.
    set_status(&env.pool, m1, "closed").await;
    let follow_up = conversation_of(&env.pool, "t3@example.com", SUPPORT).await;
    merge(&env.pool, follow_up, conversation_of(&env.pool, "t1@example.com", SALES).await).await;
    let before = env.snapshot().await;
    let replay = env.run_to_end_with(&env.with_new_group()).await;
    assert_eq!(replay.records, 11);
    assert_eq!(replay.records_duplicate, 11);
    assert_eq!(env.snapshot().await, before);
}
