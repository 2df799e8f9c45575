//! Issue 7, item 1: a partition that cannot move (an agent's transaction
//! holds its conversation's row) stalls only itself. The worker runs as its
//! own process; the other partitions are placed while the lock is held.

use crate::agent::{conversation_of, hold_row, sms};
use crate::flow::{producer, publish_to_partition, signal, stored_from, stored_from_each, wait_until};
use crate::harness::TestEnv;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_conversation_stalls_only_its_own_partition() {
    let env = TestEnv::new(4).await;
    let topic = env.topic("sms");
    let kafka = producer(&env);

    // The conversation the agent will hold, on partition 0.
    publish_to_partition(&env, &kafka, 0, &[sms("held-0", "111", "800", "first")]).await;
    env.run_to_end().await;
    let held = conversation_of(&env.pool, "held-0", "800").await;

    // An agent's transaction locks the row, as the desktop's editing does.
    let agent = hold_row(&env.pool, held).await;

    // Partition 0: a backlog for the held pair, ten times the buffer.
    // Partitions 1-3: thousands each for other pairs.
    let backlog: Vec<_> = (1..=1000).map(|n| sms(&format!("held-{n}"), "111", "800", "more")).collect();
    publish_to_partition(&env, &kafka, 0, &backlog).await;
    for p in 1..4 {
        let others: Vec<_> =
            (0..3000).map(|n| sms(&format!("p{p}-{n}"), &format!("2{p}{}", n % 50), "800", "hello")).collect();
        publish_to_partition(&env, &kafka, p, &others).await;
    }

    let worker = env
        .worker_command(&["run"])
        .env("SWITCHBOARD__WORKER__PARTITION_QUEUE_RECORDS", "100")
        .env("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "50")
        .spawn()
        .expect("start the worker");

    // While the lock is held, every record of the other partitions is placed.
    wait_until("the other partitions are placed while one is stuck", Duration::from_secs(240), || {
        stored_from_each(&env, &topic, 1..4, 3000)
    })
    .await;
    assert_eq!(stored_from(&env, &topic, 0).await, 1, "the held partition placed nothing meanwhile");
    assert!(worker.id().is_some(), "the worker is still running");

    agent.commit().await.unwrap();
    wait_until("the held partition catches up after the lock is released", Duration::from_secs(120), || async {
        stored_from(&env, &topic, 0).await == 1001
    })
    .await;
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 10_001);
    assert_eq!(env.count("SELECT count(DISTINCT external_id) FROM messages").await, 10_001, "each placed exactly once");
    assert_eq!(
        env.count(&format!("SELECT count(*) FROM messages WHERE conversation_id = '{held}'")).await,
        1001,
        "the backlog went to the held conversation"
    );

    signal(&worker, "TERM");
    let out =
        tokio::time::timeout(Duration::from_secs(60), worker.wait_with_output()).await.expect("it stops").unwrap();
    assert!(out.status.success(), "exit status {}", out.status);
}
