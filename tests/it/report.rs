//! `switchboard report` works on any database the contract allows, including
//! conversations the agent desktop created without an origin pair.

use crate::agent::*;
use crate::harness::TestEnv;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_lists_conversations_the_desk_created_without_an_origin_pair() {
    let env = TestEnv::new(1).await;
    env.publish(&mail("support@acme.example", "a1@example.com", "ana@example.com", None, &[], "")).await;
    env.run_to_end().await;
    // The desk's own conversation: only the contract's required columns.
    let desk = Uuid::new_v4();
    sqlx::query("INSERT INTO conversations (id, status, topic) VALUES ($1, 'pending', 'Opened at the desk')")
        .bind(desk)
        .execute(&env.pool)
        .await
        .unwrap();
    add_channel(&env.pool, desk, "sms", "800", "385916242493").await;

    let out = env.worker_command(&["report"]).output().await.expect("run switchboard report");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "report failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let desk_line =
        stdout.lines().find(|l| l.contains("Opened at the desk")).expect("the desk's conversation is listed");
    assert!(desk_line.contains("pending") && desk_line.contains("- <- -"), "{desk_line}");
    assert!(stdout.contains("Talking with ana@example.com"), "{stdout}");
    assert!(stdout.contains("2 conversations, 1 messages"), "{stdout}");
}
