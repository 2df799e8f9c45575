//! What a person reads when something cannot be reached, and the JSON log
//! lines a pipeline reads: the address and the cause, never a password;
//! record lines carry where the record came from.

use crate::harness::{free_port, TestEnv};
use switchboard_load::sample::SampleRecord;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_is_named_with_its_address_and_cause_and_without_the_password() {
    let port = free_port();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["migrate", "--database-url", &format!("postgres://postgres:hunter2@127.0.0.1:{port}/switchboard")])
        .env("SWITCHBOARD_HTTP_ADDR", "off")
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to Postgres at 127.0.0.1:{port}: connection refused")),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_about_a_record_carry_its_topic_partition_offset_and_event_id() {
    let env = TestEnv::new(1).await;
    env.publish(&switchboard_load::sample::binary("sms", "fax.received", "evt-fax-9", "application/json", &[], b"{}"))
        .await;
    env.publish(&SampleRecord { channel: "sms", key: None, value: b"hello".to_vec(), headers: vec![] }).await;
    let out = env
        .worker_command(&["run", "--stop-at-end"])
        .env("SWITCHBOARD_LOG_FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .expect("runs");
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .filter(|v: &serde_json::Value| v["message"] == "Record dead-lettered.")
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let sms = env.topic("sms");
    assert_eq!(lines[0]["topic"], sms.as_str());
    assert_eq!((lines[0]["partition"].as_i64(), lines[0]["offset"].as_i64()), (Some(0), Some(0)));
    assert_eq!(lines[0]["ce_id"], "evt-fax-9");
    assert_eq!(lines[0]["reason"], "unknown_type");
    assert_eq!(lines[1]["offset"].as_i64(), Some(1));
}
