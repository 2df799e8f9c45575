//! `switchboard replay` against the real broker: a dry run changes nothing,
//! a move re-reads exactly the chosen records and changes no row (I4), and
//! a group with live members is refused.

use crate::harness::TestEnv;
use std::time::Duration;
use switchboard::kafka::GroupOffsets;
use switchboard_load::sample::SampleRecord;

/// One SMS from the same customer (the shared helper, `agent::sms`).
fn sms(id: &str) -> SampleRecord {
    crate::agent::sms(id, "111", "800", "hi")
}

async fn replay(env: &TestEnv, args: &[&str]) -> (bool, String, String) {
    let mut full = vec!["replay"];
    full.extend_from_slice(args);
    let out = env.worker_command(&full).stderr(std::process::Stdio::piped()).output().await.expect("replay runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn committed(env: &TestEnv) -> Option<i64> {
    let client = GroupOffsets::new(&env.settings.kafka, &env.settings.kafka.group_id).unwrap();
    let key = (env.topic("sms"), 0);
    client.committed(std::slice::from_ref(&key)).unwrap()[&key]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_moves_a_stopped_groups_offsets_and_rereads_only_what_was_chosen() {
    let env = TestEnv::new(1).await;
    for n in 0..3 {
        env.publish(&sms(&format!("early-{n}"))).await;
    }
    // Records are stamped in milliseconds: wait for the clock to move on.
    let between = chrono::Utc::now();
    while chrono::Utc::now().timestamp_millis() <= between.timestamp_millis() {
        tokio::task::yield_now().await;
    }
    for n in 0..2 {
        env.publish(&sms(&format!("late-{n}"))).await;
    }
    assert_eq!(env.run_to_end().await.records_applied, 5);
    assert_eq!(committed(&env), Some(5));
    let before = env.snapshot().await;
    let sms_topic = env.topic("sms");

    let (ok, out, err) = replay(&env, &["--topic", &sms_topic, "--to-earliest", "--dry-run"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("5 records would be read again."), "{out}");
    assert!(out.contains("Dry run"), "{out}");
    assert_eq!(committed(&env), Some(5), "a dry run commits nothing");

    let time = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (ok, out, err) = replay(&env, &["--topic", &sms_topic, "--partition", "0", "--to-datetime", &time]).await;
    assert!(ok, "{err}");
    assert!(out.contains("2 records would be read again."), "{out}");
    assert_eq!(committed(&env), Some(3));
    let again = env.run_to_end().await;
    assert_eq!((again.records, again.records_duplicate), (2, 2), "only the two late records, as duplicates");

    let (ok, _, err) = replay(&env, &["--topic", &sms_topic, "--shift-by", "-4"]).await;
    assert!(ok, "{err}");
    assert_eq!(committed(&env), Some(1));
    let (ok, _, err) = replay(&env, &["--to-offset", "4"]).await;
    assert!(ok, "{err}");
    assert_eq!(committed(&env), Some(4), "all input topics by default");
    assert_eq!(env.run_to_end().await.records_duplicate, 1);
    assert_eq!(env.snapshot().await, before, "I4: re-reading changed no row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_is_refused_while_the_group_has_live_members() {
    let env = TestEnv::new(1).await;
    env.publish(&sms("x")).await;
    let running = env.start_worker(&env.settings);
    let client = GroupOffsets::new(&env.settings.kafka, &env.settings.kafka.group_id).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while client.members().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the worker joined the group");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, _, err) = replay(&env, &["--to-earliest"]).await;
    assert!(!ok);
    assert!(err.contains("live member"), "{err}");
    assert!(err.contains("stop every worker of the group first"), "{err}");
    running.stop().await;
    // Once the worker left, the same command goes through.
    let (ok, out, err) = replay(&env, &["--to-earliest"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("Committed"), "{out}");
}
