//! The operators' endpoint, scraped while a worker runs: counters match the
//! rows written, lag is high watermark minus committed offset, and the
//! probes say why they fail.

use crate::harness::{free_port, TestEnv};
use std::time::Duration;
use switchboard::http::{family_sum, fetch, sample};
use switchboard_load::sample::SampleRecord;

/// One SMS to the same number (the shared helper, `agent::sms`).
fn sms(id: &str, from: &str) -> SampleRecord {
    crate::agent::sms(id, from, "800", "hi")
}

/// Scrapes until `done` holds for the body, or fails after a minute.
pub(crate) async fn scrape_until(addr: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, body)) = fetch(addr, "/metrics").await {
            if done(&body) {
                return body;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; last scrape:\n{body}");
            }
        } else if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}: no scrape");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scraped_during_a_run_match_the_rows_and_lag_drains_to_zero() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let env = TestEnv::with(2, |s| {
        s.http.addr = format!("127.0.0.1:{port}");
        s.http.poll_interval = Duration::from_millis(200);
    })
    .await;
    // Three customers (R4), one of them twice (R3), one exact duplicate (R0),
    // one record that is not a CloudEvent (dead-lettered).
    for r in [sms("a1", "111"), sms("b1", "222"), sms("c1", "333"), sms("a2", "111"), sms("a1", "111")] {
        env.publish_to(&r, Some("same-key")).await;
    }
    env.publish(&SampleRecord { channel: "sms", key: None, value: b"nope".to_vec(), headers: vec![] }).await;

    let running = env.start_worker(&env.settings);

    let body = scrape_until(&addr, "six records and zero lag", |b| {
        family_sum(b, "switchboard_records_total") == 6.0
            && family_sum(b, "switchboard_partition_committed_offset") == 6.0
            && family_sum(b, "switchboard_consumer_lag_records") == 0.0
    })
    .await;
    let rule = |r: &str| sample(&body, &format!("switchboard_messages_placed_total{{rule=\"{r}\"}}")).unwrap();
    assert_eq!(rule("r4_new") as i64, env.count("SELECT count(*) FROM conversations").await);
    assert_eq!((rule("r4_new") + rule("r3_same_pair")) as i64, env.count("SELECT count(*) FROM messages").await);
    assert_eq!(rule("r0_duplicate"), 1.0);
    assert_eq!(sample(&body, "switchboard_dead_letters_total{reason=\"not_cloudevents\"}"), Some(1.0));
    assert_eq!(family_sum(&body, "switchboard_records_consumed_total"), 6.0);
    assert_eq!(family_sum(&body, "switchboard_partition_high_watermark"), 6.0, "every sms partition is assigned");
    assert_eq!(sample(&body, "switchboard_assigned_partitions"), Some(6.0), "three topics of two partitions");
    assert_eq!(sample(&body, "switchboard_in_flight_records"), Some(0.0));
    assert!(sample(&body, "switchboard_batch_commit_seconds_count").unwrap() >= 1.0);
    assert_eq!(sample(&body, "switchboard_end_to_end_latency_seconds_count"), Some(6.0));
    // The worker's share starts when it takes a record, not when the record
    // was published: these records waited for the worker to start.
    assert_eq!(sample(&body, "switchboard_worker_latency_seconds_count"), Some(6.0));
    let (worker, end_to_end) = (
        sample(&body, "switchboard_worker_latency_seconds_sum").unwrap(),
        sample(&body, "switchboard_end_to_end_latency_seconds_sum").unwrap(),
    );
    assert!(worker < end_to_end, "the worker's share {worker} s is part of the end-to-end {end_to_end} s");
    // By topic: all six records came on the SMS topic, none on the others.
    let sms_topic = env.topic("sms");
    for family in ["switchboard_end_to_end_latency_by_topic_seconds", "switchboard_worker_latency_by_topic_seconds"] {
        assert_eq!(sample(&body, &format!("{family}_count{{topic=\"{sms_topic}\"}}")), Some(6.0), "{family}");
        assert_eq!(family_sum(&body, &format!("{family}_count")), 6.0, "{family}: no other topic");
    }
    // By stage: each record once in each stage, and the three add up to its share.
    let stage = |s: &str, what: &str| {
        sample(&body, &format!("switchboard_worker_latency_by_stage_seconds_{what}{{stage=\"{s}\"}}")).unwrap()
    };
    let stages: f64 = ["buffered", "lane", "placing"].iter().map(|s| stage(s, "sum")).sum();
    for s in ["buffered", "lane", "placing"] {
        assert_eq!(stage(s, "count"), 6.0, "stage {s}");
    }
    assert!((stages - worker).abs() < 1e-6, "the stages {stages} s add up to the worker's share {worker} s");

    let (status, text) = fetch(&addr, "/healthz").await.unwrap();
    assert_eq!((status, text.as_str()), (200, "ok\n"));
    let (status, text) = fetch(&addr, "/readyz").await.unwrap();
    assert_eq!((status, text.as_str()), (200, "ready\n"));

    running.stop().await;
    assert!(fetch(&addr, "/metrics").await.is_err(), "the endpoint stops with the worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_with_readable_reasons_when_postgres_is_unreachable_and_a_partition_is_stuck() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let dead_pg = free_port();
    let env = TestEnv::new(1).await;
    // A record the worker takes but cannot place while Postgres is away.
    env.publish(&sms("w1", "444")).await;
    let mut settings = env.settings.clone();
    settings.http.addr = addr.clone();
    settings.http.stuck_after = Duration::from_secs(1);
    settings.http.poll_interval = Duration::from_millis(200);
    settings.database.url = format!("postgres://postgres:hunter2@127.0.0.1:{dead_pg}/nothing");
    let running = env.start_worker(&settings);
    let expected = format!("cannot connect to Postgres at 127.0.0.1:{dead_pg}: connection refused");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        if let Ok((status, text)) = fetch(&addr, "/readyz").await {
            assert_eq!(status, 503, "{text}");
            if text.contains(&expected) && text.contains(&format!("partition {}/0 stuck", env.topic("sms"))) {
                break text;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no readable reason in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!text.contains("hunter2"), "no secret in {text}");
    running.stop().await;
}
