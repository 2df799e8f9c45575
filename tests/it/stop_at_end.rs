//! Issue 10, item 6: `run --stop-at-end` means the topics are consumed.
//! Members are killed mid-run; their partitions stay theirs until their
//! sessions time out. A `--stop-at-end` run started right after waits for
//! them, says so, and exits only when every partition is committed at the
//! end it had at start.

use crate::agent::sms;
use crate::flow::{json_logs, logged, producer, publish_to_partition, signal, wait_until};
use crate::harness::TestEnv;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_at_end_after_killed_members_waits_for_their_partitions() {
    let env = TestEnv::new(4).await;
    let kafka = producer(&env);
    for p in 0..4 {
        let records: Vec<_> =
            (0..500).map(|n| sms(&format!("sae-{p}-{n}"), &format!("6{p}{}", n % 13), "800", "hi")).collect();
        publish_to_partition(&env, &kafka, p, &records).await;
    }
    let start_member = || {
        env.worker_command(&["run"]).env("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "5").spawn().expect("start a member")
    };
    let members = [start_member(), start_member()];
    wait_until("the members are placing", Duration::from_secs(60), || async {
        env.count("SELECT count(*) FROM messages").await >= 200
    })
    .await;
    for m in &members {
        signal(m, "KILL");
    }
    for m in members {
        let _ = m.wait_with_output().await;
    }
    let at_kill = env.count("SELECT count(*) FROM messages").await;
    assert!(at_kill < 2000, "killed before the end ({at_kill} placed)");
    // More work before the final run starts, placed in small batches, so the
    // run is still placing when its first look at the committed offsets
    // comes back (under load that look can take seconds).
    for p in 0..4 {
        let records: Vec<_> =
            (500..2000).map(|n| sms(&format!("sae-{p}-{n}"), &format!("6{p}{}", n % 13), "800", "hi")).collect();
        publish_to_partition(&env, &kafka, p, &records).await;
    }

    let out = tokio::time::timeout(
        Duration::from_secs(180),
        env.worker_command(&["--json-logs", "run", "--stop-at-end"])
            .env("RUST_LOG", "info")
            .env("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "5")
            .stderr(std::process::Stdio::piped())
            .output(),
    )
    .await
    .expect("the run ends")
    .unwrap();
    assert!(out.status.success(), "exit status {}", out.status);
    let logs = json_logs(&out.stderr);
    let waiting = logged(&logs, "Waiting for partitions to be committed at their end");
    assert!(!waiting.is_empty(), "it says what it waits for");
    // Whether the first look still saw the dead members holding partitions
    // depends on how fast the group noticed them; what it names is the
    // partitions short of their ends.
    assert!(waiting[0]["waiting_for"].as_str().is_some_and(|w| w.contains("of 2000")), "{:?}", waiting[0]);

    assert_eq!(env.count("SELECT count(*) FROM messages").await, 8000, "the topics are consumed");
    assert_eq!(env.count("SELECT count(DISTINCT external_id) FROM messages").await, 8000);
    let again = env.run_to_end().await;
    assert_eq!(again.records, 0, "every partition is committed at its end");
}
