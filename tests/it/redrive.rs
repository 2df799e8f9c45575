//! Dead-letter tools against the real broker: filters, the JSON form and
//! the one-record view; a redrive with a header fix places the record
//! exactly once; a record that keeps failing stops at the redrive limit.

use crate::harness::{dlq_headers, TestEnv};
use switchboard_load::sample::binary;

const SMS: &str = r#"{"results":[{"messageId":"fixed-1","from":"111","to":"800","text":"hi","receivedAt":"2026-11-25T07:00:00.000+0000","smsCount":1}],"messageCount":1,"pendingMessageCount":0}"#;

async fn cli(env: &TestEnv, args: &[&str]) -> String {
    let out = env.worker_command(args).stderr(std::process::Stdio::piped()).output().await.expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_dead_lettered_for_a_wrong_header_is_placed_exactly_once_after_a_redrive_with_the_fix() {
    let env = TestEnv::new(1).await;
    // The gateway misspelt the type.
    env.publish(&binary("sms", "sms.recieved", "evt-typo", "application/json", &[], SMS.as_bytes())).await;
    env.publish(&binary("sms", "sms.received", "evt-bad", "application/json", &[], b"{\"results\": [")).await;
    let stats = env.run_to_end().await;
    assert_eq!(stats.records_dead_lettered, 2);
    let sms = env.topic("sms");
    let source = format!("{sms}/0/0");

    let listing = cli(&env, &["dead-letters", "--reason", "unknown_type"]).await;
    assert!(listing.contains("1 dead letters on"), "{listing}");
    assert!(listing.contains("       1  unknown_type"), "{listing}");
    let all = cli(&env, &["dead-letters", "--source-topic", &sms, "--since", "1h"]).await;
    assert!(all.contains("2 dead letters on"), "{all}");
    let json = cli(&env, &["dead-letters", "--json"]).await;
    let reasons: Vec<String> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object per line")["reason"].to_string())
        .collect();
    assert_eq!(reasons, ["\"unknown_type\"", "\"bad_payload\""]);
    let view = cli(&env, &["dead-letters", "--show", &source]).await;
    assert!(view.contains("ce_type: sms.recieved"), "{view}");
    assert!(view.contains("\"messageId\":\"fixed-1\""), "{view}");

    let fix = ["redrive", "--reason", "unknown_type", "--set-header", "ce_type=sms.received"];
    let dry = cli(&env, &[&fix[..], &["--dry-run"]].concat()).await;
    assert!(dry.contains(&format!("would send  unknown_type  {source} -> {sms} (redrive 1)")), "{dry}");
    assert_eq!(env.run_to_end().await.records, 0, "a dry run sends nothing");

    let sent = cli(&env, &fix).await;
    assert!(sent.contains("1 record redriven, 0 skipped"), "{sent}");
    let placed = env.run_to_end().await;
    assert_eq!((placed.records, placed.records_applied), (1, 1));
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE external_id = 'fixed-1'").await, 1);

    // Redriving it again is harmless: a duplicate.
    cli(&env, &fix).await;
    assert_eq!(env.run_to_end().await.records_duplicate, 1);
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE external_id = 'fixed-1'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_keeps_failing_is_redriven_up_to_the_limit_then_only_with_force() {
    let env = TestEnv::new(1).await;
    env.publish(&binary("sms", "sms.received", "evt-bad", "application/json", &[], b"{\"results\": [")).await;
    env.run_to_end().await;
    for round in 1..=3 {
        let out = cli(&env, &["redrive", "--reason", "bad_payload"]).await;
        assert!(out.contains(&format!("(redrive {round})")), "{out}");
        assert_eq!(env.run_to_end().await.records_dead_lettered, 1);
    }
    let letters = env.dead_letters();
    assert_eq!(letters.len(), 4);
    let last = dlq_headers(letters.last().unwrap());
    assert_eq!(last["dlq_redrive_count"], "3", "dead-lettered again with the counter kept");
    assert_eq!(last["dlq_original_source"], format!("{}/0/0", env.topic("sms")));

    let refused = cli(&env, &["redrive", "--all"]).await;
    assert!(refused.contains("already redriven 3 times"), "{refused}");
    assert!(refused.contains("0 records redriven, 1 skipped"), "{refused}");
    let forced = cli(&env, &["redrive", "--all", "--force"]).await;
    assert!(forced.contains("(redrive 4)"), "{forced}");
}
