//! Shared transactions (`worker::coalesce`): batches of several partitions
//! that are ready at once are placed in one transaction, each lands where
//! it would have landed alone, and a batch blocked by an agent gives its
//! shared transaction up rather than holding the others behind it.

use crate::agent::{conversation_of, hold_row, sms};
use crate::flow::{producer, publish_to_partition, stored_from, stored_from_each, wait_until, waiting_on_locks};
use crate::harness::{free_port, TestEnv};
use std::time::Duration;
use switchboard::http::{fetch, sample};

/// One series of the worker's metrics (0 before the first scrape answers).
async fn metric(addr: &str, series: &str) -> f64 {
    match fetch(addr, "/metrics").await {
        Ok((200, body)) => sample(&body, series).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// An environment of 4 sms partitions with one shared lane and the
/// metrics endpoint on a free port; a conversation on partition 0 that an
/// agent's transaction holds. Returns (env, endpoint, the held conversation,
/// the agent's transaction).
async fn one_lane_and_a_held_conversation(
    lock_timeout: Duration,
) -> (TestEnv, String, uuid::Uuid, sqlx::Transaction<'static, sqlx::Postgres>) {
    let addr = format!("127.0.0.1:{}", free_port());
    let env = TestEnv::with(4, |s| {
        s.http.addr = addr.clone();
        s.worker.shared_transactions = 1;
        s.worker.shared_lock_timeout = lock_timeout;
    })
    .await;
    publish_to_partition(&env, &producer(&env), 0, &[sms("held-0", "111", "800", "first")]).await;
    env.run_to_end().await;
    let held = conversation_of(&env.pool, "held-0", "800").await;
    let agent = hold_row(&env.pool, held).await;
    (env, addr, held, agent)
}

/// Two records for one new customer on each of partitions 1-3.
fn others(p: i32) -> Vec<switchboard_load::sample::SampleRecord> {
    let from = format!("2{p}");
    vec![sms(&format!("p{p}-a"), &from, "800", "hi"), sms(&format!("p{p}-b"), &from, "800", "hi again")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_ready_together_share_one_transaction_and_land_as_they_would_alone() {
    // The lane waits as long as the agent holds the row, so the other
    // partitions' batches queue up behind it.
    let (env, addr, held, agent) = one_lane_and_a_held_conversation(Duration::from_secs(120)).await;
    let kafka = producer(&env);
    let running = env.start_worker(&env.settings);

    publish_to_partition(&env, &kafka, 0, &[sms("held-1", "111", "800", "again")]).await;
    wait_until("the lane's transaction waits for the agent's row", Duration::from_secs(60), || async {
        waiting_on_locks(&env).await >= 1
    })
    .await;
    for p in 1..4 {
        publish_to_partition(&env, &kafka, p, &others(p)).await;
    }
    wait_until("three partitions' batches wait for the lane", Duration::from_secs(60), || async {
        metric(&addr, "switchboard_shared_waiting_batches").await == 3.0
    })
    .await;
    let queued = std::time::Instant::now();
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 1, "nothing placed while the lane waits");

    agent.commit().await.unwrap();
    // The lane was busy until the agent let go: each waiting batch waited
    // at least this long for it, and says so in the `lane` stage.
    let held_for = queued.elapsed().as_secs_f64();
    env.wait_for_messages(8, Duration::from_secs(60)).await;
    let lane = |what: &'static str| {
        let series = format!("switchboard_worker_latency_by_stage_seconds_{what}{{stage=\"lane\"}}");
        let addr = addr.clone();
        async move { metric(&addr, &series).await }
    };
    // Observed once each batch is durable, just after its rows are.
    wait_until("the seven records this worker placed are observed", Duration::from_secs(60), || async {
        lane("count").await == 7.0
    })
    .await;
    let waited = lane("sum").await;
    assert!(
        waited >= 3.0 * held_for,
        "three batches waited at least {held_for} s each for the lane; in all {waited} s"
    );
    let committed = metric(&addr, "switchboard_shared_transactions_total{outcome=\"committed\"}").await;
    let batches = metric(&addr, "switchboard_shared_transaction_batches_total").await;
    assert!(
        batches - committed >= 2.0,
        "the three waiting batches went in one transaction: {batches} batches in {committed}"
    );
    assert_eq!(metric(&addr, "switchboard_shared_transactions_total{outcome=\"fell_back\"}").await, 0.0);
    running.stop().await;

    // Placed as alone: once each, the held customer's message in the held
    // conversation (R3), each new customer's two in one new conversation.
    assert_eq!(env.count("SELECT count(DISTINCT external_id) FROM messages").await, 8);
    assert_eq!(conversation_of(&env.pool, "held-1", "800").await, held);
    for p in 1..4 {
        let first = conversation_of(&env.pool, &format!("p{p}-a"), "800").await;
        assert_eq!(conversation_of(&env.pool, &format!("p{p}-b"), "800").await, first, "partition {p}");
        assert_ne!(first, held);
    }
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_blocked_by_an_agent_gives_up_its_shared_transaction_and_holds_up_only_itself() {
    let (env, addr, held, agent) = one_lane_and_a_held_conversation(Duration::from_millis(300)).await;
    let kafka = producer(&env);
    let topic = env.topic("sms");
    let running = env.start_worker(&env.settings);

    publish_to_partition(&env, &kafka, 0, &[sms("held-1", "111", "800", "again")]).await;
    for p in 1..4 {
        publish_to_partition(&env, &kafka, p, &others(p)).await;
    }
    wait_until("the blocked batch's shared transaction fell back", Duration::from_secs(60), || async {
        metric(&addr, "switchboard_shared_transactions_total{outcome=\"fell_back\"}").await >= 1.0
    })
    .await;
    wait_until("the other partitions are placed while one is held", Duration::from_secs(60), || {
        stored_from_each(&env, &topic, 1..4, 2)
    })
    .await;
    assert_eq!(stored_from(&env, &topic, 0).await, 1, "the held partition placed nothing meanwhile");

    agent.commit().await.unwrap();
    env.wait_for_messages(8, Duration::from_secs(60)).await;
    running.stop().await;
    assert_eq!(env.count("SELECT count(DISTINCT external_id) FROM messages").await, 8);
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 8, "each placed exactly once");
    assert_eq!(conversation_of(&env.pool, "held-1", "800").await, held);
}
