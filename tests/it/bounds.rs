//! Bounded inputs (contract section 5) through the real broker and
//! Postgres, in one worker run: webhook keys that no one has seen before
//! add no metric series, an email naming a quarter of a million references
//! is stored without a lock per id, and a batch past the item bound is
//! dead-lettered whole.

use crate::agent::mail;
use crate::harness::{free_port, TestEnv};
use crate::metrics::scrape_until;
use futures::future::join_all;
use std::time::Duration;
use switchboard::decode::bounds::{MAX_ITEMS, MAX_REFERENCES};
use switchboard::http::{family_sum, sample};
use switchboard_load::sample::{binary, SampleRecord};

const NEW_KEYS: usize = 5000;

/// The `n`th webhook carrying one event under a key never seen before,
/// alternately as a messaging item and as an entry of its own.
fn new_key(n: usize) -> SampleRecord {
    let event = serde_json::json!({ "detail": n });
    let entry = if n.is_multiple_of(2) {
        let item = serde_json::json!({ "sender": {"id": "7021"}, "recipient": {"id": "900"}, "timestamp": 1, format!("x{n}"): event });
        serde_json::json!({ "id": "900", "time": 1, "messaging": [item] })
    } else {
        serde_json::json!({ "id": "900", "time": 1, format!("x{n}"): event })
    };
    let body = serde_json::json!({ "object": "page", "entry": [entry] }).to_string();
    binary("messenger", "messenger.received", &format!("evt-x{n}"), "application/json", &[], body.as_bytes())
}

fn infobip_batch(results: usize) -> SampleRecord {
    let results: Vec<_> = (0..results)
        .map(|i| serde_json::json!({ "messageId": format!("b-{i}"), "from": format!("38591{i}"), "to": "800", "text": "hi" }))
        .collect();
    let body = serde_json::json!({ "results": results }).to_string();
    binary("sms", "sms.received", "evt-batch", "application/json", &[], body.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_webhook_keys_add_no_series_and_a_quarter_million_references_are_stored_as_the_newest_hundred() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let env = TestEnv::with(1, |s| {
        s.http.addr = addr.clone();
        s.http.poll_interval = Duration::from_millis(200);
    })
    .await;
    let references: Vec<String> = (0..250_000).map(|i| format!("old-{i}@x")).collect();
    let refs: Vec<&str> = references.iter().map(String::as_str).collect();
    let long_thread = mail("support@acme.example", "long@x", "ana@example.com", None, &refs, "");
    env.publish(&long_thread).await;
    env.publish(&infobip_batch(MAX_ITEMS + 1)).await;
    let webhooks: Vec<SampleRecord> = (0..NEW_KEYS).map(new_key).collect();
    for chunk in webhooks.chunks(500) {
        join_all(chunk.iter().map(|record| env.publish(record))).await;
    }

    let running = env.start_worker(&env.settings);
    let total = (NEW_KEYS + 2) as f64;
    let body = scrape_until(&addr, "every record ended", |b| {
        family_sum(b, "switchboard_records_total") == total
            && family_sum(b, "switchboard_partition_committed_offset") == total
    })
    .await;
    running.stop().await;

    let skipped: Vec<&str> = body.lines().filter(|l| l.starts_with("switchboard_skipped_entries_total{")).collect();
    assert_eq!(skipped, [format!("switchboard_skipped_entries_total{{kind=\"other\"}} {NEW_KEYS}")], "{skipped:?}");
    let outcome = |o: &str| sample(&body, &format!("switchboard_records_total{{outcome=\"{o}\"}}"));
    assert_eq!(outcome("skipped"), Some(NEW_KEYS as f64));
    assert_eq!(outcome("applied"), Some(1.0), "the long thread");
    assert_eq!(outcome("dead_lettered"), Some(1.0), "the batch past the item bound");
    assert_eq!(sample(&body, "switchboard_dead_letters_total{reason=\"too_large\"}"), Some(1.0));

    let (stored_refs, raw_len, first, last): (i32, i32, String, String) = sqlx::query_as(
        "SELECT cardinality(\"references\"), length(raw), \"references\"[1], \"references\"[cardinality(\"references\")] \
         FROM messages WHERE external_id = 'long@x'",
    )
    .fetch_one(&env.pool)
    .await
    .expect("the long thread is stored");
    assert_eq!(stored_refs as usize, MAX_REFERENCES);
    assert_eq!((first.as_str(), last.as_str()), ("old-249900@x", "old-249999@x"));
    assert_eq!(raw_len as usize, long_thread.value.len(), "raw keeps every reference");
    let cut = env.count("SELECT count(*) FROM messages WHERE details->'truncated' = '[\"references\"]'::jsonb").await;
    assert_eq!(cut, 1, "the agent desktop can tell the references were cut");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 1, "nothing of the batch is placed");
}
