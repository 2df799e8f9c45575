//! Upgrading a store that already holds conversations: the newest migration
//! runs on a database filled under the schema without it, changes no row,
//! and the same traffic placed again afterwards is all duplicates (I2, I4
//! across an upgrade). Whatever the newest migration is, this test runs it;
//! when today's writes cannot do without it (a type they bind, which no row
//! holds), the test takes the newest one they can do without, and fills the
//! store under every other migration (a schema no deployment had, the type
//! included, which the migration under test does not read).

use crate::harness::TestEnv;
use std::path::{Path, PathBuf};
use switchboard::failure::{Infra, Verdict};
use switchboard::placement::Policy;
use switchboard::store::{Item, Outcome, Store, StoreError};
use switchboard_load::sample::{demo_traffic, SampleRecord};
use switchboard_load::{Generator, Mix};

/// The migration files, oldest first.
fn migration_files() -> Vec<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&source)
        .expect("migrations")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

/// `files` copied into a directory of their own, and the name of `left_out`.
fn apart(files: &[PathBuf], left_out: &Path) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("switchboard-migrations-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for file in files {
        std::fs::copy(file, dir.join(file.file_name().expect("name"))).expect("copy");
    }
    (dir, left_out.file_name().expect("name").to_string_lossy().into_owned())
}

/// Every migration but the `skip`-th newest, in a directory of its own,
/// and the name of the one left out.
fn all_but_one(skip: usize) -> (PathBuf, String) {
    let mut files = migration_files();
    let left_out = files.remove(files.len() - 1 - skip);
    apart(&files, &left_out)
}

/// The migrations before `name`, in a directory of their own, and `name`.
fn migrations_before(name: &str) -> (PathBuf, String) {
    let mut files = migration_files();
    let at = files.iter().position(|f| f.file_name().is_some_and(|n| n == name)).expect("the migration exists");
    files.truncate(at + 1);
    let newest = files.pop().expect("at least one migration");
    apart(&files, &newest)
}

/// The demo's records and 3,000 of the benchmark's mix (duplicates, copies
/// to a second inbox, replies, automatic mail), decoded into batch items.
fn mixed_items(env: &TestEnv) -> Vec<Item> {
    let mix = Mix {
        customers: 300,
        channels: (70, 20, 10),
        duplicates: 0.05,
        siblings: 0.03,
        replies: 0.10,
        automatic: 0.02,
        email_bytes: 2048,
        ..Mix::default()
    };
    let mut generator = Generator::new(mix);
    let demo = demo_traffic().len();
    let records: Vec<SampleRecord> =
        demo_traffic().into_iter().chain((0..3_000).map(|_| generator.next_record().1)).collect();
    let mut items = Vec::new();
    for (offset, decoded) in env.decoded_items(records, 1 << 20).into_iter().enumerate() {
        // The demo includes records meant for the dead-letter topic.
        let Ok(decoded) = decoded else {
            assert!(offset < demo, "record {offset} of the generated mix does not decode");
            continue;
        };
        items.extend(decoded);
    }
    items
}

/// Places `items` in batches of 250; how many were duplicates.
async fn place(store: &Store, items: &[Item]) -> usize {
    try_place(store, items).await.expect("placed")
}

/// A type that does not exist yet, as Postgres or sqlx says it.
fn is_missing_type(e: &StoreError) -> bool {
    let text = e.to_string();
    text.contains("type \"") && text.contains("does not exist")
        || text.contains("type named") && text.contains("not found")
}

async fn try_place(store: &Store, items: &[Item]) -> Result<usize, StoreError> {
    let mut duplicates = 0;
    for chunk in items.chunks(250) {
        let batch: Vec<&Item> = chunk.iter().collect();
        let placed = store.apply_batch(&batch, &Policy::default()).await?;
        duplicates += placed.outcomes.iter().filter(|o| matches!(o, Outcome::Duplicate)).count();
    }
    Ok(duplicates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_migration_keeps_a_filled_store_and_replays_stay_duplicates() {
    let applied = "SELECT count(*) FROM _sqlx_migrations";
    // Leave out the newest migration; if today's writes cannot do without
    // it (the schema wait of an upgrade not yet run), the one before, and
    // so on: each attempt on a database of its own.
    for skip in 0..3 {
        let env = TestEnv::unmigrated(1).await;
        // The fill stands for what the release before wrote; it wrote no
        // events (the outbox is younger than the schema it ran on).
        let store = Store::from_pool(env.pool.clone()).with_events(false);
        let (older, newest) = all_but_one(skip);
        let migrator = sqlx::migrate::Migrator::new(older.as_path()).await.expect("older migrations");
        migrator.run(&env.pool).await.expect("run");
        std::fs::remove_dir_all(&older).expect("clean up");
        let before_upgrade = env.count(applied).await;

        let items = mixed_items(&env);
        let first_duplicates = match try_place(&store, &items).await {
            Ok(duplicates) => duplicates,
            // Only a type the writes bind may be missing: a migration that
            // adds one changes no row. A missing column or table fails here.
            Err(e) if e.verdict() == Verdict::Wait(Infra::Schema) && is_missing_type(&e) => {
                eprintln!("today's writes need {newest} ({e}); leaving out the one before");
                continue;
            }
            Err(e) => panic!("filling under the schema without {newest}: {e}"),
        };
        assert!(first_duplicates < items.len() / 5, "mostly new traffic: {first_duplicates} of {}", items.len());
        let filled = env.snapshot().await;
        assert!(env.count("SELECT count(*) FROM messages").await > 2_500);
        assert!(env.count("SELECT count(*) FROM conversation_links").await > 0, "copies and follow-ups were linked");

        store.migrate().await.expect("the migration runs on a filled store");
        assert_eq!(env.count(applied).await, before_upgrade + 1, "{newest} was the one left to run");
        assert_eq!(env.snapshot().await, filled, "{newest} changed rows");

        assert_eq!(place(&store, &items).await, items.len(), "after {newest}, placing the same traffic again");
        assert_eq!(env.snapshot().await, filled, "the replay after {newest} changed rows");
        return;
    }
    panic!("today's writes need each of the newest three migrations: the upgrade test has no schema to fill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_prepared_statements_a_migration_outdated_places_the_next_batch() {
    let env = TestEnv::new(1).await;
    // One connection, so the second batch runs where the first prepared
    // its statements.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&env.settings.database.url)
        .await
        .expect("pool");
    let store = Store::from_pool(pool);
    let items = mixed_items(&env);
    let (first, second) = items.split_at(items.len() / 2);
    place(&store, first).await;
    let stored = env.count("SELECT count(*) FROM messages").await;

    // What a migration may do: change a column the batch's statements
    // return (its collation here, as 20261128000000 did).
    sqlx::query(r#"ALTER TABLE messages ALTER COLUMN endpoint TYPE text COLLATE "POSIX""#)
        .execute(&env.pool)
        .await
        .expect("alter");

    place(&store, second).await;
    assert!(env.count("SELECT count(*) FROM messages").await > stored, "the second half landed");
    assert_eq!(place(&store, items.as_slice()).await, items.len(), "everything placed once is a duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn related_links_stored_both_ways_are_folded_into_one_keeping_the_first() {
    const FOLD: &str = "20261206000000_related_links_once_per_pair.sql";
    let env = TestEnv::unmigrated(1).await;
    let (older, _) = migrations_before(FOLD);
    sqlx::migrate::Migrator::new(older.as_path()).await.expect("older migrations").run(&env.pool).await.expect("run");
    std::fs::remove_dir_all(&older).expect("clean up");
    // Four conversations; A-B linked both ways by R1r and by R7 (the R7
    // row first), C-D both ways by R7 alone, A-C once.
    let ids: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::now_v7()).collect();
    for id in &ids {
        sqlx::query("INSERT INTO conversations (id, status, topic) VALUES ($1, 'open', 't')")
            .bind(id)
            .execute(&env.pool)
            .await
            .expect("conversation");
    }
    let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    for (n, (from, to, sibling_only)) in
        [(b, a, true), (a, b, false), (c, d, true), (d, c, true), (a, c, false)].into_iter().enumerate()
    {
        sqlx::query(
            "INSERT INTO conversation_links (conversation_id, related_conversation_id, kind, sibling_only, created_at)
             VALUES ($1, $2, 'related', $3, now() + make_interval(secs => $4))",
        )
        .bind(from)
        .bind(to)
        .bind(sibling_only)
        .bind(n as f64)
        .execute(&env.pool)
        .await
        .expect("link");
    }
    Store::from_pool(env.pool.clone()).migrate().await.expect("the rest of the migrations");
    let links: Vec<(uuid::Uuid, uuid::Uuid, bool)> = sqlx::query_as(
        "SELECT conversation_id, related_conversation_id, sibling_only FROM conversation_links ORDER BY created_at",
    )
    .fetch_all(&env.pool)
    .await
    .expect("links");
    assert_eq!(
        links,
        [(b, a, false), (c, d, true), (a, c, false)],
        "the first of each pair stays; it is R7's alone only if both rows were"
    );
}
