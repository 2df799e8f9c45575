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
use switchboard::store::{Store, PARTICIPATION_SQL, SNAPSHOT_SQL};

const STORED: i32 = 3_000;

/// Rows that plan nodes read and then threw away, summed over the plan.
fn rows_filtered_out(node: &Value) -> i64 {
    let own: i64 = ["Rows Removed by Filter", "Rows Removed by Index Recheck", "Rows Removed by Join Filter"]
        .iter()
        .filter_map(|k| node.get(*k).and_then(Value::as_i64))
        .sum();
    let children = node.get("Plans").and_then(Value::as_array).map(|p| p.iter().map(rows_filtered_out).sum());
    own + children.unwrap_or(0)
}

/// Pages the statement touched (the top node counts its children's).
fn pages(plan: &Value) -> i64 {
    ["Shared Hit Blocks", "Shared Read Blocks"].iter().filter_map(|k| plan.get(*k).and_then(Value::as_i64)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_planned_on_empty_tables_probes_by_key_once_they_are_full() {
    let env = TestEnv::new(1).await;
    // Statistics must stay those of the empty tables, as while a fresh
    // database fills faster than autovacuum analyzes it: an analyze would
    // replace the plan under test with one made on full tables.
    for table in ["messages", "conversations", "conversation_channels", "people", "person_contacts"] {
        env.pool.execute(format!("ALTER TABLE {table} SET (autovacuum_enabled = off)").as_str()).await.expect("off");
    }
    // One connection with the worker's session settings.
    let store = Store::connect_lazy(&env.settings.database.url, 1).expect("store");
    let mut conn = store.pool().acquire().await.expect("connection");
    conn.execute(format!("PREPARE snap AS {SNAPSHOT_SQL}").as_str()).await.expect("prepare");

    // Four emails: a copy of stored email 17 reaching a second inbox (R7
    // looks for the conversations holding its Message-ID), a new email
    // from customer 18 (its pair and its customer are looked up), and two
    // whose ids stored replies name, one by In-Reply-To and one by
    // References (R1r).
    let batch = "EXECUTE snap(
        ARRAY['email', 'email', 'email', 'email'],
        ARRAY['sales@acme.example', 'support@acme.example', 'support@acme.example', 'support@acme.example'],
        ARRAY['m17@example.com', 'new-18@example.com', 'parent-18@example.com', 'root-19@example.com'],
        ARRAY['email', 'email'], ARRAY['sales@acme.example', 'support@acme.example'],
        ARRAY['c17@example.com', 'c18@example.com'],
        ARRAY['email', 'email', 'email', 'email'],
        ARRAY['sales@acme.example', 'support@acme.example', 'support@acme.example', 'support@acme.example'],
        ARRAY['m17@example.com', 'new-18@example.com', 'parent-18@example.com', 'root-19@example.com'],
        ARRAY['email', 'email'], ARRAY['c17@example.com', 'c18@example.com'],
        ARRAY['m17@example.com', 'new-18@example.com', 'parent-18@example.com', 'root-19@example.com'])";
    // The first execution makes the generic plan, on empty tables.
    let rows = conn.fetch_all(batch).await.expect("snapshot on empty tables");
    assert_eq!(rows.len(), 1, "only the `now` row while nothing is stored");

    // The tables fill up: email and SMS customers, each known to People,
    // with a conversation bound to their pair and one inbound message that
    // answers an earlier one (In-Reply-To and References).
    let mut tx = env.pool.begin().await.expect("begin");
    // Bindings made here are the worker's kind, checked by construction.
    tx.execute("SET LOCAL switchboard.placer = on").await.expect("placer");
    for (channel, endpoint, prefix, domain, id_prefix) in
        [("email", "support@acme.example", "c", "@example.com", "m"), ("sms", "+15550100", "+1555", "", "sms-")]
    {
        sqlx::query(
            "WITH g AS (SELECT g, $3 || g || $4 AS contact, gen_random_uuid() AS id, gen_random_uuid() AS person
                        FROM generate_series(1, $5) g),
             c AS (INSERT INTO conversations (id, topic, origin_channel, origin_endpoint, origin_contact)
                   SELECT id, 'plan test', $1, $2, contact FROM g),
             b AS (INSERT INTO conversation_channels (conversation_id, channel, endpoint, contact)
                   SELECT id, $1, $2, contact FROM g),
             p AS (INSERT INTO people (id, name) SELECT person, 'Customer ' || g FROM g),
             a AS (INSERT INTO person_contacts (person_id, channel, address) SELECT person, $1, contact FROM g)
             INSERT INTO messages (id, conversation_id, channel, endpoint, contact, external_id, in_reply_to, \"references\")
             SELECT gen_random_uuid(), id, $1, $2, contact, $6 || g || $4, 'parent-' || g || $4, ARRAY['root-' || g || $4]
             FROM g",
        )
        .bind(channel)
        .bind(endpoint)
        .bind(prefix)
        .bind(domain)
        .bind(STORED)
        .bind(id_prefix)
        .execute(&mut *tx)
        .await
        .expect("fill");
    }
    tx.commit().await.expect("commit");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 2 * STORED as i64);

    // The same plan finds what the batch needs...
    let rows = conn.fetch_all(batch).await.expect("snapshot on full tables");
    let found: Vec<(String, Option<String>)> =
        rows.iter().map(|r| (r.get::<String, _>("kind"), r.get::<Option<String>, _>("key"))).collect();
    for (kind, key) in [
        ("holder", "m17@example.com"),
        ("pair", "c18@example.com"),
        ("reply", "parent-18@example.com"),
        ("reply", "root-19@example.com"),
        ("customer", "c17@example.com"),
        ("customer", "c18@example.com"),
    ] {
        assert!(found.contains(&(kind.into(), Some(key.into()))), "{kind} {key} is found: {found:?}");
    }
    // Customer 18's conversation (its pair, and its reply's) and customer
    // 19's are locked; holders are only read.
    assert_eq!(found.iter().filter(|(kind, _)| kind == "conversation").count(), 2, "{found:?}");

    // ...by reading only those rows.
    let plan: Value = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {batch}"))
        .fetch_one(&mut *conn)
        .await
        .expect("explain");
    let analyzed: Option<i64> = sqlx::query_scalar(
        "SELECT max(analyze_count + autoanalyze_count) FROM pg_stat_user_tables
         WHERE relname IN ('messages', 'conversations', 'conversation_channels', 'people', 'person_contacts')",
    )
    .fetch_one(&env.pool)
    .await
    .expect("analyze counts");
    assert_eq!(analyzed, Some(0), "the plan under test was made on empty tables");
    let filtered = rows_filtered_out(&plan[0]["Plan"]);
    let touched = pages(&plan[0]["Plan"]);
    assert!(
        filtered <= 10 && touched <= 250,
        "the snapshot read {filtered} rows it did not need and {touched} pages, of {} messages stored: {plan:#}",
        2 * STORED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_participation_query_planned_on_empty_tables_reads_only_the_asked_conversations() {
    let env = TestEnv::new(1).await;
    for table in ["messages", "conversations", "conversation_channels"] {
        env.pool.execute(format!("ALTER TABLE {table} SET (autovacuum_enabled = off)").as_str()).await.expect("off");
    }
    // Planned once, generic, while the tables are empty: as on a fresh
    // database, with the worker's session settings.
    let store = Store::connect_lazy(&env.settings.database.url, 1).expect("store");
    let mut conn = store.pool().acquire().await.expect("connection");
    conn.execute(format!("PREPARE part AS {PARTICIPATION_SQL}").as_str()).await.expect("prepare");
    let empty = conn
        .fetch_all("EXECUTE part(ARRAY[gen_random_uuid()], ARRAY['a@example.com'], ARRAY['example.com'])")
        .await
        .expect("participation on empty tables");
    assert_eq!(empty.len(), 1);
    assert!(!empty[0].get::<bool, _>("by_address") && !empty[0].get::<bool, _>("by_domain"), "nobody took part");
    // Then 3,000 email conversations of 10 messages each, with their pairs.
    sqlx::query(
        "WITH g AS (SELECT g, 'c' || g || '@example.com' AS contact, gen_random_uuid() AS id
                    FROM generate_series(1, $1) g),
         c AS (INSERT INTO conversations (id, topic, origin_channel, origin_endpoint, origin_contact)
               SELECT id, 'plan test', 'email', 'support@acme.example', contact FROM g),
         b AS (INSERT INTO conversation_channels (conversation_id, channel, endpoint, contact)
               SELECT id, 'email', 'support@acme.example', contact FROM g)
         INSERT INTO messages (id, conversation_id, channel, endpoint, contact, external_id, details)
         SELECT gen_random_uuid(), id, 'email', 'support@acme.example', contact, 'm' || g || '-' || n,
                jsonb_build_object('cc', jsonb_build_array('cc' || g || '@partner.example'))
         FROM g, generate_series(1, 10) n",
    )
    .bind(STORED)
    .execute(&env.pool)
    .await
    .expect("fill");
    let asked: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT conversation_id, contact FROM conversation_channels ORDER BY contact LIMIT 5")
            .fetch_all(&env.pool)
            .await
            .expect("some conversations");
    // Each conversation asked about for its own contact (a participant),
    // for its Cc's address (a participant through a message), and for a
    // stranger whose domain a participant shares.
    let mut convs = Vec::new();
    let mut senders = Vec::new();
    let mut domains = Vec::new();
    for (n, (id, contact)) in asked.iter().enumerate() {
        let cc = contact.replacen('c', "cc", 1).replace("@example.com", "@partner.example");
        for (sender, domain) in [
            (contact.clone(), "example.com"),
            (cc, "partner.example"),
            (format!("x{n}@partner.example"), "partner.example"),
        ] {
            convs.push(format!("'{id}'"));
            senders.push(format!("'{sender}'"));
            domains.push(format!("'{domain}'"));
        }
    }
    let call = format!(
        "EXECUTE part(ARRAY[{}]::uuid[], ARRAY[{}], ARRAY[{}])",
        convs.join(","),
        senders.join(","),
        domains.join(",")
    );
    let rows = conn.fetch_all(call.as_str()).await.expect("participation");
    let verdicts: Vec<(String, bool, bool)> =
        rows.iter().map(|r| (r.get::<String, _>("sender"), r.get("by_address"), r.get("by_domain"))).collect();
    for (sender, by_address, by_domain) in &verdicts {
        let stranger = sender.starts_with('x');
        assert_eq!(*by_address, !stranger, "{sender}");
        assert!(by_domain, "{sender}: a participant's domain");
    }
    assert_eq!(verdicts.len(), 15);
    let plan: Value = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {call}"))
        .fetch_one(&mut *conn)
        .await
        .expect("explain");
    let touched = pages(&plan[0]["Plan"]);
    assert!(
        touched <= 300,
        "the participation query touched {touched} pages for 5 conversations of {STORED}: {plan:#}"
    );
}
