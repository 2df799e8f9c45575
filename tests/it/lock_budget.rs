//! Issue 7, item 4: many partitions of email traffic at once never exhaust
//! Postgres's shared lock table. The worker's pool is sized from this
//! server's lock table so that full 500-email batches on every connection
//! would not fit in half of it; the worker cuts its batches and says so.

use crate::agent::mail;
use crate::flow::{json_logs, logged, producer, publish_to_partition};
use crate::harness::TestEnv;
use std::time::Duration;

/// Postgres's lock table: `max_locks_per_transaction` × (`max_connections`
/// + `max_prepared_transactions`).
async fn lock_table(env: &TestEnv) -> i64 {
    env.count("SELECT current_setting('max_locks_per_transaction')::bigint * (current_setting('max_connections')::bigint + current_setting('max_prepared_transactions')::bigint)")
        .await
}

/// A pool whose batches fit half of a table of `capacity` locks only at
/// 200 records each (16 connections on Postgres's defaults; more where the
/// table is larger).
fn pool_for(capacity: i64) -> i64 {
    (capacity / 2 / (3 * 200)).max(16)
}

/// All advisory locks held in the test's database.
const HELD: &str = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                    WHERE l.locktype = 'advisory' AND d.datname = current_database()";

/// The most advisory locks one backend (one transaction) holds.
const HELD_BY_ONE: &str = "SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM pg_locks l \
                           JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' \
                           AND d.datname = current_database() GROUP BY l.pid) per_backend";

/// Runs the worker to the end with a pool of `pool` and the `vars` given,
/// sampling `held` every `every` while it runs; returns its output (it must
/// have succeeded) and the most `held` ever counted.
async fn run_sampling(
    env: &TestEnv,
    pool: i64,
    vars: &[(&str, &str)],
    held: &str,
    every: Duration,
) -> (std::process::Output, i64) {
    let mut command = env.worker_command(&["--json-logs", "run", "--stop-at-end"]);
    command.env("SWITCHBOARD__DATABASE__MAX_CONNECTIONS", pool.to_string()).stderr(std::process::Stdio::piped());
    for (k, v) in vars {
        command.env(k, v);
    }
    let run = command.output();
    tokio::pin!(run);
    let mut most = 0;
    let out = loop {
        tokio::select! {
            out = &mut run => break out.expect("run the worker"),
            _ = tokio::time::sleep(every) => most = most.max(env.count(held).await),
        }
    };
    assert!(out.status.success(), "exit status {}", out.status);
    (out, most)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_partitions_of_email_stay_within_the_lock_table() {
    let env = TestEnv::new(16).await;
    let kafka = producer(&env);
    for p in 0..16 {
        let records: Vec<_> = (0..500)
            .map(|n| {
                mail(
                    "support@acme.example",
                    &format!("lb-{p}-{n}@x"),
                    &format!("c{p}-{}@example.com", n % 40),
                    None,
                    &[],
                    "",
                )
            })
            .collect();
        publish_to_partition(&env, &kafka, p, &records).await;
    }
    let capacity = lock_table(&env).await;
    let pool = pool_for(capacity);
    let vars = [("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "500")];
    let (out, most) = run_sampling(&env, pool, &vars, HELD, Duration::from_millis(100)).await;
    let logs = json_logs(&out.stderr);
    let cut = logged(&logs, "Batches are cut to fit Postgres's lock table");
    assert_eq!(cut.len(), 1, "the worker says it cut batches and what to set");
    let batch = cut[0]["batch_max_records"].as_i64().unwrap();
    assert!(16 * 3 * batch <= capacity / 2, "16 batches of {batch} fit in half of {capacity}");
    assert!(cut[0]["max_locks_per_transaction_needed"].as_i64().unwrap() > 0);
    eprintln!("lock table {capacity}, batch {batch}, most advisory locks seen {most}");
    assert!(most <= capacity / 2, "at most half the lock table: {most} of {capacity}");

    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["retries"], 0, "no batch failed for want of locks: {stats}");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 8000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_naming_a_hundred_unknown_ids_each_are_placed_within_the_lock_table() {
    // Each email takes 103 advisory locks (itself, its pair, its copies and
    // its newest 100 references, none stored); batches sized for 3 a record
    // would ask for 34 times the budget.
    let env = TestEnv::new(4).await;
    let kafka = producer(&env);
    for p in 0..4 {
        let records: Vec<_> = (0..150)
            .map(|n| {
                let refs: Vec<String> = (0..100).map(|r| format!("unknown-{p}-{n}-{r}@x")).collect();
                let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
                mail(
                    "support@acme.example",
                    &format!("heavy-{p}-{n}@x"),
                    &format!("h{p}-{n}@example.com"),
                    None,
                    &refs,
                    "",
                )
            })
            .collect();
        publish_to_partition(&env, &kafka, p, &records).await;
    }
    let capacity = lock_table(&env).await;
    let pool = pool_for(capacity);
    let vars = [("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "500")];
    let (out, most) = run_sampling(&env, pool, &vars, HELD, Duration::from_millis(100)).await;
    eprintln!("lock table {capacity}, pool {pool}, most advisory locks seen {most}");
    assert!(most <= capacity / 2, "at most half the lock table: {most} of {capacity}");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["failures_by_class"], serde_json::json!({}), "no batch failed for want of locks: {stats}");
    assert_eq!(stats["retries"], 0, "{stats}");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 600);
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE cardinality(\"references\") = 100").await, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_carrying_a_thousand_messages_is_placed_in_transactions_within_the_budget() {
    let env = TestEnv::new(4).await;
    let kafka = producer(&env);
    for p in 0..4 {
        let results: Vec<String> = (0..1000)
            .map(|n| {
                format!(
                    r#"{{"messageId":"bulk-{p}-{n}","from":"3859{p}{n:05}","to":"800","text":"hi","receivedAt":"2026-11-25T07:00:00.000+0000","smsCount":1}}"#
                )
            })
            .collect();
        let body = format!(r#"{{"results":[{}],"messageCount":1000,"pendingMessageCount":0}}"#, results.join(","));
        let record = switchboard_load::sample::binary(
            "sms",
            "sms.received",
            &format!("bulk-{p}"),
            "application/json",
            &[],
            body.as_bytes(),
        );
        publish_to_partition(&env, &kafka, p, &[record]).await;
    }
    let capacity = lock_table(&env).await;
    let pool = pool_for(capacity);
    let budget = capacity / 2 / pool;
    let (out, most) = run_sampling(&env, pool, &[], HELD_BY_ONE, Duration::from_millis(20)).await;
    eprintln!("budget {budget} locks a transaction, most seen in one {most}");
    assert!(most <= budget, "one transaction held {most} advisory locks, over its budget of {budget}");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["failures_by_class"], serde_json::json!({}), "{stats}");
    assert_eq!(stats["records_applied"], 4, "{stats}");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 4000);
}
