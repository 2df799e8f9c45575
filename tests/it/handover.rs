//! Issue 7, item 5: a second member joins while the first is in the middle
//! of a batch. The revoked partition's batch finishes and is committed
//! before the new owner reads the partition, so the new owner reads none of
//! it again; the first member keeps serving the rebalance while its batches
//! run.

use crate::agent::{conversation_of, sms};
use crate::flow::{producer, publish_to_partition, signal, wait_until, waiting_on_locks, LiveLog};
use crate::harness::TestEnv;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_mid_batch_gets_the_partition_after_the_batch_is_committed() {
    let env = TestEnv::new(2).await;
    let kafka = producer(&env);
    // One conversation per partition, both held by an agent's transaction,
    // so whichever partition moves has a batch in flight.
    for p in 0..2 {
        publish_to_partition(&env, &kafka, p, &[sms(&format!("ho-{p}-0"), &format!("70{p}"), "800", "first")]).await;
    }
    env.run_to_end().await;
    let mut agent = env.pool.begin().await.unwrap();
    for p in 0..2 {
        let held = conversation_of(&env.pool, &format!("ho-{p}-0"), "800").await;
        sqlx::query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE")
            .bind(held)
            .execute(&mut *agent)
            .await
            .unwrap();
    }
    for p in 0..2 {
        let records: Vec<_> = (1..=30).map(|n| sms(&format!("ho-{p}-{n}"), &format!("70{p}"), "800", "more")).collect();
        publish_to_partition(&env, &kafka, p, &records).await;
    }

    // All three input topics point at the SMS topic: two partitions, so the
    // second member takes exactly one of the two held ones.
    let sms_topic = env.topic("sms");
    let json = |cmd: &mut tokio::process::Command| {
        cmd.env("SWITCHBOARD_TOPIC_EMAIL", &sms_topic)
            .env("SWITCHBOARD_TOPIC_MESSENGER", &sms_topic)
            .env("RUST_LOG", "info")
            .env("SWITCHBOARD__WORKER__DRAIN_TIMEOUT", "120s")
            .stderr(std::process::Stdio::piped());
    };
    let mut first = env.worker_command(&["--json-logs", "run"]);
    json(&mut first);
    let mut first = first.spawn().expect("start the first member");
    let first_log = LiveLog::follow(&mut first);
    wait_until("both partitions' batches wait on the agent", Duration::from_secs(60), || async {
        waiting_on_locks(&env).await >= 2
    })
    .await;

    let mut second = env.worker_command(&["--json-logs", "run"]);
    json(&mut second);
    let mut second = second.spawn().expect("start the second member");
    let second_log = LiveLog::follow(&mut second);
    wait_until("the first member is draining a revoked partition", Duration::from_secs(60), || async {
        !first_log.find("Finishing in-flight batches of revoked partitions").is_empty()
    })
    .await;
    let got_partitions = |log: &LiveLog| log.find("Partitions assigned").iter().any(|l| l["added"].as_i64() > Some(0));
    assert!(!got_partitions(&second_log), "the new member has nothing while the batch runs");

    agent.commit().await.unwrap();
    wait_until("the second member got a partition", Duration::from_secs(60), || async { got_partitions(&second_log) })
        .await;
    wait_until("everything is placed", Duration::from_secs(60), || async {
        env.count("SELECT count(*) FROM messages").await == 62
    })
    .await;

    signal(&first, "TERM");
    signal(&second, "TERM");
    let first = first.wait_with_output().await.unwrap();
    let second = second.wait_with_output().await.unwrap();
    assert!(first.status.success() && second.status.success());
    let a: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    // Whatever the first member had in flight on the moved partition it
    // finished; its queued records it left to the new owner, which started
    // exactly after the committed batch: no record was read twice.
    assert_eq!(a["records"].as_u64().unwrap() + b["records"].as_u64().unwrap(), 60, "first {a}, second {b}");
    assert_eq!(a["records_duplicate"], 0, "{a}");
    assert_eq!(b["records_duplicate"], 0, "the new owner re-read nothing the first member placed: {b}");
    assert!(first_log.find("Revoked partitions' batches did not finish in time").is_empty());
    assert_eq!(env.count("SELECT count(DISTINCT external_id) FROM messages").await, 62);
}
