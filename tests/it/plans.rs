//! Issue 11: a batch's snapshot reads what the batch names, not what the
//! tables hold.
//!
//! The worker's connections plan each statement once (generic plans, see
//! `Store::connect_lazy`), usually while a fresh database is still empty,
//! and keep that plan as the tables grow until Postgres analyzes them. So
//! the plan made on empty tables has to stay a set of index probes: one
//! that scans a whole channel's rows and filters them costs a little more
//! with every message stored.

use crate::harness::TestEnv;
use serde_json::Value;
use sqlx::{Executor, Row};
use switchboard::store::{Store, SNAPSHOT_SQL};

const STORED: i64 = 3_000;

/// Rows that plan nodes read and then threw away, summed over the plan.
fn rows_filtered_out(node: &Value) -> i64 {
    let own: i64 = ["Rows Removed by Filter", "Rows Removed by Index Recheck", "Rows Removed by Join Filter"]
        .iter()
        .filter_map(|k| node.get(*k).and_then(Value::as_i64))
        .sum();
    let children = node.get("Plans").and_then(Value::as_array).map(|p| p.iter().map(rows_filtered_out).sum());
    own + children.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_planned_on_empty_tables_probes_by_key_once_they_are_full() {
    let env = TestEnv::new(1).await;
    // One connection with the worker's session settings.
    let store = Store::connect_lazy(&env.settings.database.url, 1).expect("store");
    let mut conn = store.pool().acquire().await.expect("connection");
    conn.execute(format!("PREPARE snap AS {SNAPSHOT_SQL}").as_str()).await.expect("prepare");

    // Two batches: a copy of a stored email reaching a second inbox (R7
    // looks for the conversations holding that Message-ID), and a new
    // email on a pair that has a conversation (its pair is looked up).
    let batch = "EXECUTE snap(
        ARRAY['email', 'email'], ARRAY['sales@acme.example', 'support@acme.example'],
        ARRAY['m17@example.com', 'new-18@example.com'],
        ARRAY['email', 'email'], ARRAY['sales@acme.example', 'support@acme.example'],
        ARRAY['c17@example.com', 'c18@example.com'],
        ARRAY['email', 'email'], ARRAY['sales@acme.example', 'support@acme.example'],
        ARRAY['m17@example.com', 'new-18@example.com'],
        ARRAY['email', 'email'], ARRAY['c17@example.com', 'c18@example.com'],
        ARRAY['m17@example.com', 'new-18@example.com'])";
    // The first execution makes the generic plan, on empty tables.
    let rows = conn.fetch_all(batch).await.expect("snapshot on empty tables");
    assert_eq!(rows.len(), 1, "only the `now` row while nothing is stored");

    // The tables fill up without being analyzed, as a fresh database does
    // while a backlog is placed: email and SMS conversations, one inbound
    // message each.
    for (channel, endpoint, domain) in [("email", "support@acme.example", "@example.com"), ("sms", "+15550100", "")] {
        let prefix = if channel == "email" { "c" } else { "+1555" };
        let id_prefix = if channel == "email" { "m" } else { "sms-" };
        sqlx::query(
            "WITH g AS (SELECT g, gen_random_uuid() AS id FROM generate_series(1, $5) g),
             c AS (INSERT INTO conversations (id, topic, origin_channel, origin_endpoint, origin_contact)
                   SELECT id, 'plan test', $1, $2, $3 || g || $4 FROM g)
             INSERT INTO messages (id, conversation_id, channel, endpoint, contact, external_id)
             SELECT gen_random_uuid(), id, $1, $2, $3 || g || $4, $6 || g || $4 FROM g",
        )
        .bind(channel)
        .bind(endpoint)
        .bind(prefix)
        .bind(domain)
        .bind(STORED as i32)
        .bind(id_prefix)
        .execute(&env.pool)
        .await
        .expect("fill");
    }
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 2 * STORED);

    // The same plan finds what the batches need...
    let rows = conn.fetch_all(batch).await.expect("snapshot on full tables");
    let found: Vec<(String, Option<String>)> =
        rows.iter().map(|r| (r.get::<String, _>("kind"), r.get::<Option<String>, _>("key"))).collect();
    assert!(found.contains(&("holder".into(), Some("m17@example.com".into()))), "R7 finds the holder: {found:?}");
    assert!(found.contains(&("pair".into(), Some("c18@example.com".into()))), "the pair is found: {found:?}");
    // The pair's conversation is locked; holders are only read.
    assert_eq!(found.iter().filter(|(kind, _)| kind == "conversation").count(), 1, "{found:?}");

    // ...by reading only those rows.
    let plan: Value = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {batch}"))
        .fetch_one(&mut *conn)
        .await
        .expect("explain");
    let filtered = rows_filtered_out(&plan[0]["Plan"]);
    assert!(filtered <= 10, "the snapshot read {filtered} rows it did not need, of {} stored: {plan:#}", 2 * STORED);
}
