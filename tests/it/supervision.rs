//! Issue 7, items 2 and 6: a partition task that panics is noticed at once,
//! logged with its topic and partition, and restarted from its last stored
//! offset; a stop waits for in-flight batches only up to its deadline.

use crate::agent::{conversation_of, hold_row, sms};
use crate::flow::{json_logs, logged, producer, publish_to_partition, signal, wait_until, waiting_on_locks};
use crate::harness::TestEnv;
use std::time::{Duration, Instant};

/// Runs the worker to the end in batches of 10 with `worker.test_panic_at`
/// set to `at`; returns its JSON log lines and its counters' output.
pub async fn run_panicking_at(env: &TestEnv, at: &str) -> (Vec<serde_json::Value>, Vec<u8>) {
    let out = env
        .worker_command(&["--json-logs", "run", "--stop-at-end"])
        .env("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "10")
        .env("SWITCHBOARD__WORKER__TEST_PANIC_AT", at)
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .expect("run the worker");
    assert!(out.status.success(), "exit status {}", out.status);
    (json_logs(&out.stderr), out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_partition_task_is_restarted_from_its_last_stored_offset() {
    let env = TestEnv::new(2).await;
    let topic = env.topic("sms");
    let kafka = producer(&env);
    for p in 0..2 {
        let records: Vec<_> =
            (0..100).map(|n| sms(&format!("sup-{p}-{n}"), &format!("9{p}{}", n % 7), "800", "hi")).collect();
        publish_to_partition(&env, &kafka, p, &records).await;
    }
    let (logs, stdout) = run_panicking_at(&env, &format!("{topic}/0/55")).await;
    let failed = logged(&logs, "Partition task failed");
    assert_eq!(failed.len(), 1, "one failure, logged once: {failed:?}");
    assert_eq!(failed[0]["topic"], topic.as_str());
    assert_eq!(failed[0]["partition"], 0);
    let from = failed[0]["from_offset"].as_i64().unwrap();
    assert!(from <= 55, "restarted from the start of the failed batch, not past it: {from}");

    let stats: serde_json::Value = serde_json::from_slice(&stdout).expect("counters");
    assert_eq!(stats["records"], 200, "each record counted once: {stats}");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 200);
    assert_eq!(env.count("SELECT count(DISTINCT external_id) FROM messages").await, 200, "nothing skipped or doubled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_past_its_deadline_exits_without_committing_the_unfinished_batch() {
    let env = TestEnv::new(1).await;
    let kafka = producer(&env);
    publish_to_partition(&env, &kafka, 0, &[sms("dl-0", "5551", "800", "first")]).await;
    env.run_to_end().await;
    let held = conversation_of(&env.pool, "dl-0", "800").await;
    let agent = hold_row(&env.pool, held).await;
    let records: Vec<_> = (1..=20).map(|n| sms(&format!("dl-{n}"), "5551", "800", "more")).collect();
    publish_to_partition(&env, &kafka, 0, &records).await;

    let worker = env
        .worker_command(&["--json-logs", "run"])
        .env("SWITCHBOARD__WORKER__SHUTDOWN_TIMEOUT", "2s")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the worker");
    wait_until("the worker's batch waits on the agent's lock", Duration::from_secs(60), || async {
        waiting_on_locks(&env).await > 0
    })
    .await;
    let stopped_at = Instant::now();
    signal(&worker, "TERM");
    let out =
        tokio::time::timeout(Duration::from_secs(30), worker.wait_with_output()).await.expect("it stops").unwrap();
    let took = stopped_at.elapsed();
    assert!(!out.status.success(), "an abandoned batch is reported by a failing exit");
    assert!(took < Duration::from_secs(15), "the deadline bounds the stop: {took:?}");
    assert_eq!(logged(&json_logs(&out.stderr), "In-flight batches did not finish in time").len(), 1);

    agent.commit().await.unwrap();
    let rest = env.run_to_end().await;
    assert_eq!(rest.records, 20, "the abandoned batch was not committed: the group reads it again");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 21);
}
