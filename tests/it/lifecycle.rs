//! Stopping the real binary: SIGTERM finishes in-flight work, commits and
//! exits 0; SIGKILL loses nothing and doubles nothing on the next start.

use crate::agent::sms;
use crate::flow::signal;
use crate::harness::TestEnv;
use std::time::Duration;
use tokio::process::Child;

fn start(env: &TestEnv) -> Child {
    env.worker_command(&["run"]).env("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "5").spawn().expect("start the worker")
}

async fn publish_many(env: &TestEnv, n: usize) {
    for i in 0..n {
        env.publish(&sms(&format!("life-{i}"), &format!("{}", i % 17), "800", "hello")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_commits_and_exits_zero() {
    let env = TestEnv::new(2).await;
    publish_many(&env, 200).await;
    let child = start(&env);
    env.wait_for_messages(1, Duration::from_secs(30)).await;
    let stopped_at = std::time::Instant::now();
    signal(&child, "TERM");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.expect("it stops").unwrap();
    assert!(out.status.success(), "exit status {}", out.status);
    // Within the default worker.shutdown_timeout (30 s), with room for the
    // final commit and leaving the group.
    assert!(stopped_at.elapsed() < Duration::from_secs(35), "stopped in {:?}", stopped_at.elapsed());
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("it prints its counters");
    let done = stats["records"].as_i64().unwrap();
    // Everything it counted as done is stored, and committed: the next run
    // with the same group starts exactly after it.
    assert_eq!(env.count("SELECT count(*) FROM messages").await, done);
    let rest = env.run_to_end().await;
    assert_eq!(rest.records as i64, 200 - done, "no record read twice by the group after a clean stop");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_nothing_and_doubles_nothing() {
    let env = TestEnv::new(2).await;
    publish_many(&env, 300).await;
    let child = start(&env);
    env.wait_for_messages(20, Duration::from_secs(30)).await;
    signal(&child, "KILL");
    let _ = child.wait_with_output().await;
    let stored_at_kill = env.count("SELECT count(*) FROM messages").await;
    assert!(stored_at_kill < 300, "killed before the end ({stored_at_kill} stored)");

    let rest = env.run_to_end().await;
    assert_eq!(rest.records_dead_lettered, 0);
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 300, "every message stored once");
    assert_eq!(env.count("SELECT count(DISTINCT external_id) FROM messages").await, 300);
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, 17, "one conversation per pair");
}
