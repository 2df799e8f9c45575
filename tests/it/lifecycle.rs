//! Stopping the real binary: SIGTERM finishes in-flight work, commits and
//! exits 0; SIGKILL loses nothing and doubles nothing on the next start.

use crate::agent::{conversation_of, hold_row, sms};
use crate::flow::{signal, wait_until, waiting_on_locks};
use crate::harness::TestEnv;
use std::time::Duration;
use tokio::process::Child;

fn start(env: &TestEnv) -> Child {
    env.worker_command(&["run"]).env("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "5").spawn().expect("start the worker")
}

/// Messages `from..to` of 17 pairs, keyed by pair as gateways key by customer.
async fn publish_many(env: &TestEnv, from: usize, to: usize) {
    for i in from..to {
        let pair = i % 17;
        env.publish_to(&sms(&format!("life-{i}"), &format!("{pair}"), "800", "hello"), Some(&format!("pair-{pair}")))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_commits_and_exits_zero() {
    let env = TestEnv::new(2).await;
    publish_many(&env, 0, 200).await;
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
    // The run is killed while a batch waits: an agent holds pair 0's
    // conversation, so that partition cannot finish whatever the timing,
    // while the other partition keeps placing.
    publish_many(&env, 0, 1).await;
    env.run_to_end().await;
    let agent = hold_row(&env.pool, conversation_of(&env.pool, "life-0", "800").await).await;
    publish_many(&env, 1, 300).await;
    let child = start(&env);
    env.wait_for_messages(20, Duration::from_secs(30)).await;
    wait_until("a batch waits for the agent's row", Duration::from_secs(30), || async {
        waiting_on_locks(&env).await > 0
    })
    .await;
    signal(&child, "KILL");
    let _ = child.wait_with_output().await;
    agent.commit().await.unwrap();
    let stored_at_kill = env.count("SELECT count(*) FROM messages").await;
    assert!(stored_at_kill < 300, "killed before the end ({stored_at_kill} stored)");

    let rest = env.run_to_end().await;
    assert_eq!(rest.records_dead_lettered, 0);
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 300, "every message stored once");
    assert_eq!(env.count("SELECT count(DISTINCT external_id) FROM messages").await, 300);
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, 17, "one conversation per pair");
}
