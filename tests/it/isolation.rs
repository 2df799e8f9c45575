//! Issue 18, item 2: no record holds up its partition, or Postgres, for more
//! than a bounded time. A record that fails for a reason that is not the
//! infrastructure's is isolated and dead-lettered; the records around it are
//! placed and the partition's offsets move on.

use crate::agent::{mail, sms};
use crate::flow::{logged, producer, publish_to_partition};
use crate::harness::{bootstrap, dlq_headers, TestEnv};
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use std::time::Duration;
use switchboard_load::sample::{email, SampleRecord};

/// The flood email's References: more ids than Postgres's lock table holds
/// locks when each id takes one (the default table holds 64 × 100 + ...).
const FLOOD_IDS: usize = 250_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_naming_a_quarter_million_references_does_not_hold_up_the_mail_behind_it() {
    // The bound of this test: the run must reach the end of the partition
    // within 60 s (`stop_at_end_timeout`), or it fails. Before the failure
    // policy the flood email was retried for as long as the test ran, and
    // none of the 200 emails behind it was placed.
    let env = TestEnv::with(1, |s| s.worker.stop_at_end_timeout = Duration::from_secs(60)).await;
    let references: Vec<String> = (0..FLOOD_IDS).map(|n| format!("<flood-{n}@lists.example>")).collect();
    let raw = format!(
        "From: ana@example.com\r\nTo: support@acme.example\r\nMessage-ID: <flood@example.com>\r\nSubject: all of them\r\nReferences: {}\r\n\r\nhello\r\n",
        references.join("\r\n ")
    );
    assert!(raw.len() > 5_000_000 && raw.len() < env.settings.worker.max_record_bytes, "{} bytes", raw.len());
    let kafka = producer(&env);
    let mut records = vec![email("support@acme.example", "evt-flood", &raw)];
    records.extend((0..200).map(|n| {
        mail("support@acme.example", &format!("after-{n}@example.com"), &format!("c{n}@example.com"), None, &[], "")
    }));
    publish_to_partition(&env, &kafka, 0, &records).await;

    let stats = env.run_to_end().await;
    assert_eq!(stats.records, 201, "{stats:?}");
    assert_eq!(
        env.count("SELECT count(*) FROM messages WHERE external_id LIKE 'after-%'").await,
        200,
        "every email behind the flood is placed"
    );
    // Stored with the newest 100 ids for threading; the raw keeps them all.
    let (kept, newest, raw_bytes): (i32, String, i32) = sqlx::query_as(
        "SELECT cardinality(\"references\"), \"references\"[cardinality(\"references\")], octet_length(raw) \
         FROM messages WHERE external_id = 'flood@example.com'",
    )
    .fetch_one(&env.pool)
    .await
    .expect("the flood email is stored");
    assert_eq!(kept, 100);
    assert_eq!(newest, format!("flood-{}@lists.example", FLOOD_IDS - 1), "the newest ids are the ones kept");
    assert_eq!(raw_bytes as usize, raw.len(), "nothing the customer sent is lost");
    // It never failed: no `out of shared memory`, nothing retried, so no
    // other Postgres client had to share a full lock table with it.
    assert!(stats.failures_by_class.is_empty(), "{:?}", stats.failures_by_class);
    assert_eq!(stats.retries, 0);
    assert_eq!(stats.records_dead_lettered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_makes_placing_panic_on_every_attempt_is_dead_lettered_and_the_rest_placed() {
    let poison = 37;
    let env = TestEnv::with(1, |s| s.worker.test_panic_placing = format!("{}/0/{poison}", s.kafka.topics.sms)).await;
    let topic = env.topic("sms");
    let kafka = producer(&env);
    let records: Vec<SampleRecord> =
        (0..120).map(|n| sms(&format!("pp-{n}"), &format!("7{}", n % 9), "800", "hello")).collect();
    publish_to_partition(&env, &kafka, 0, &records).await;

    let stats = env.run_to_end().await;
    assert_eq!(stats.records, 120);
    assert_eq!(stats.records_applied, 119);
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 119);
    assert_eq!(env.count(&format!("SELECT count(*) FROM messages WHERE external_id = 'pp-{poison}'")).await, 0);
    let letters = env.dead_letters();
    assert_eq!(letters.len(), 1, "exactly the poison record");
    let h = dlq_headers(&letters[0]);
    assert_eq!(h["dlq_reason"], "panicked");
    assert_eq!(h["dlq_source"], format!("{topic}/0/{poison}"));
    assert!(h["dlq_detail"].contains("injected test panic"), "{}", h["dlq_detail"]);
    // The whole batch and the lone record each got their attempts.
    assert!(stats.failures_by_class.get("panic").copied().unwrap_or(0) >= 6, "{:?}", stats.failures_by_class);
    assert!(stats.batch_splits >= 1);
}

/// Sets `max.message.bytes` of `topic` on the broker.
async fn limit_topic(topic: &str, bytes: usize) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap()).create().expect("admin client");
    let value = bytes.to_string();
    let config = AlterConfig::new(ResourceSpecifier::Topic(topic)).set("max.message.bytes", &value);
    let results = admin.alter_configs([&config], &AdminOptions::new()).await.expect("alter configs");
    for result in results {
        result.expect("topic config altered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_larger_than_the_topic_takes_is_replaced_by_a_truncated_one() {
    let env = TestEnv::new(1).await;
    limit_topic(&env.topic("dlq"), 100_000).await;
    // Not a CloudEvent, and incompressible, so the broker sees its size.
    let mut noise = Vec::with_capacity(300_000);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while noise.len() < 300_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    let big = SampleRecord { channel: "sms", key: Some(b"k".to_vec()), value: noise.clone(), headers: vec![] };
    let kafka = producer(&env);
    publish_to_partition(&env, &kafka, 0, &[big, sms("after-big", "5550", "800", "fine")]).await;

    let stats = env.run_to_end().await;
    assert_eq!(stats.records, 2);
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE external_id = 'after-big'").await, 1);
    assert_eq!(stats.dead_letters_truncated, 1);
    let letters = env.dead_letters();
    assert_eq!(letters.len(), 1);
    let h = dlq_headers(&letters[0]);
    assert_eq!(h["dlq_reason"], "not_cloudevents");
    assert_eq!(h["dlq_truncated"], "true");
    assert_eq!(h["dlq_original_bytes"], noise.len().to_string());
    assert_eq!(h["dlq_source"], format!("{}/0/0", env.topic("sms")));
    let value = letters[0].value.as_deref().expect("a value");
    assert_eq!(value, &noise[..64 * 1024], "the first bytes of the original value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_partition_task_panics_on_every_time_is_dead_lettered_after_its_restarts() {
    let env = TestEnv::new(1).await;
    let topic = env.topic("sms");
    let kafka = producer(&env);
    let records: Vec<SampleRecord> =
        (0..50).map(|n| sms(&format!("tp-{n}"), &format!("6{}", n % 7), "800", "hello")).collect();
    publish_to_partition(&env, &kafka, 0, &records).await;
    let (logs, _) = crate::supervision::run_panicking_at(&env, &format!("always:{topic}/0/17")).await;
    assert_eq!(logged(&logs, "Partition task failed").len(), 3, "three restarts, then the record is set aside");
    assert_eq!(logged(&logs, "The partition's task panicked on this record every time").len(), 1);
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 49);
    let letters = env.dead_letters();
    assert_eq!(letters.len(), 1);
    let h = dlq_headers(&letters[0]);
    assert_eq!((h["dlq_reason"].as_str(), h["dlq_source"].clone()), ("panicked", format!("{topic}/0/17")));
    assert!(h["dlq_detail"].contains("injected test panic"), "{}", h["dlq_detail"]);
}
