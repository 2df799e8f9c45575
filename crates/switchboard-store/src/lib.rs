//! The conversation store: the only crate of the workspace that speaks SQL.
//!
//! [`Store::apply_batch`] places a batch of decoded messages in one
//! transaction: it takes the advisory locks that serialize every decision
//! about the same message, pair and Message-ID across all workers
//! ([`locks`]), fetches a snapshot of the facts with a few set-based queries
//! ([`snapshot`]), lets the pure planner ([`crate::placement::batch`]) place
//! every message, and writes the result with one statement per table
//! ([`writes`]; messages in chunks of about 512 KiB of bodies). A batch
//! costs about ten round trips whatever its count of messages
//! (`docs/performance.md`).
//!
//! How the database enforces the invariants:
//! - I1 (one ongoing conversation per pair): every decision about a pair is
//!   taken under a transaction-scoped advisory lock on that pair, so two
//!   workers never both see "no ongoing conversation" and both create one; the
//!   partial unique index `conversations_one_ongoing_per_pair` refuses a
//!   second ongoing conversation even if that reasoning were wrong. Pairs an
//!   agent binds through `conversation_channels` are covered by a trigger
//!   that takes the same pair lock and refuses a second ongoing conversation
//!   (migration `20261126100001`).
//! - I2/I4 (exactly once, replays change nothing): the unique constraint on
//!   (`channel`, `endpoint`, `external_id`) plus the advisory lock on that key
//!   make the R0 check exact; the whole batch commits or nothing does, and
//!   offsets are stored only after the commit.
//! - I3 (one follow-up link): the unique constraint on `conversation_links`
//!   and the pair lock under which the follow-up is decided.
//! - I5 (one sibling link per pair): every copy of one Message-ID is placed
//!   under one advisory lock, and the links are recomputed from the set of
//!   holders, so order does not matter. Links are the union over every
//!   Message-ID: a stale one is deleted only when no Message-ID calls for it,
//!   which the pure core decides from facts read under a per-link lock
//!   ([`writes`]). A link and its
//!   reverse are the same link: one lock key, one row (a unique index on
//!   the unordered pair).
//! - R1r (replies that came first): a message also takes the message lock
//!   of every id it references, so a parent and the replies naming it are
//!   decided one after the other and the later one sees the earlier.
//! - Agent actions: conversations the decision depends on are read with
//!   `FOR NO KEY UPDATE`, so an agent's concurrent close or merge either
//!   happens before (and is seen) or waits until the batch commits.

// Public items are the ones other crates use; the compiler names any other.
#![warn(unreachable_pub)]

pub mod agent;
mod classify;
pub use classify::of_postgres;
mod limits;
pub use limits::LockTable;
#[doc(hidden)]
pub use snapshot_sql::{PARTICIPATION_SQL, SNAPSHOT_SQL};
mod locks;
pub mod outbox;
pub mod privileges;
pub use locks::locks_needed;
mod records;
mod report;
mod rows;
mod snapshot;
mod snapshot_sql;
mod writes;

// The core's modules and the failure policy, at the paths the store's
// modules name them by.
use switchboard_core::{domain, events, failure, placement};

use crate::domain::InboundMessage;
use crate::failure::Verdict;
use crate::placement::batch::{self, ItemResult};
use crate::placement::{Policy, Rule};
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// The embedded migrations (`migrations/`), applied by `switchboard migrate`.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A failed store operation, with what the failure policy
/// ([`crate::failure`]) says to do about it. On any error nothing of the
/// batch is written.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct StoreError {
    verdict: Verdict,
    #[source]
    source: sqlx::Error,
}

impl StoreError {
    /// Classifies a sqlx error by the failure policy.
    pub fn classify(source: sqlx::Error) -> StoreError {
        StoreError { verdict: of_postgres(&source), source }
    }

    /// What to do about it.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Postgres refuses to run a statement prepared on this connection
    /// again: a migration changed the columns it returns ("cached plan must
    /// not change result type"). Every retry on the same connection would
    /// fail the same way. Told by where Postgres raised it, since the
    /// message may be translated and its SQLSTATE (0A000, feature not
    /// supported) is shared with errors a retry does not mend.
    pub(crate) fn is_outdated_prepared_statement(&self) -> bool {
        let Some(db) = self.source.as_database_error().and_then(|e| e.try_downcast_ref::<PgDatabaseError>()) else {
            return false;
        };
        db.code() == "0A000" && db.routine() == Some("RevalidateCachedQuery")
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::classify(err)
    }
}

/// Where a message came from, written to `messages.kafka_*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRef {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One message to place, with its source record.
#[derive(Clone, Debug)]
pub struct Item {
    pub message: InboundMessage,
    pub source: SourceRef,
}

/// Where a message landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Landed {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    /// A conversation was created for it.
    pub created: bool,
}

/// What happened to one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// R0: already stored, nothing changed.
    Duplicate,
    /// Stored by `rule` in `landed.conversation_id`.
    Applied { rule: Rule, landed: Landed },
}

/// What a committed batch did besides placing its messages, for the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchEffects {
    /// Messages whose sender the policy refused to join a conversation they
    /// referenced.
    pub sender_refusals: u64,
    /// Conversations set back to `open` (R5).
    pub reopens: u64,
    /// Conversations of replies merged into their late parent's (R8).
    pub late_parent_merges: u64,
    /// Links inserted, by kind: `sibling` (R7), `related` (R8 and the sender policy), `follow_up`.
    pub links: BTreeMap<String, u64>,
}

/// A committed batch: one outcome per item, and its effects.
#[derive(Clone, Debug)]
pub struct Placed {
    pub outcomes: Vec<Outcome>,
    pub effects: BatchEffects,
}

/// A handle on the conversation store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    /// Write each batch's events to the outbox (`events.enabled`).
    events: bool,
}

impl Store {
    /// Opens a pool lazily: the worker starts even while Postgres is down and
    /// waits for it batch by batch.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Store, sqlx::Error> {
        // Session settings of the worker's connections (docs/performance.md):
        // - Generic plans: each statement is planned once per connection
        //   instead of at every execution. The plan is often made while the
        //   tables are still empty and stays cached while they grow, so
        //   every statement is written so that the only plans open to it
        //   probe indexes by the batch's keys (tests/it/plans.rs).
        // - No sequential scans: every statement touches a batch's few rows
        //   by key. On tables whose statistics lag behind their growth (a
        //   fresh database fills faster than autovacuum analyzes it) the
        //   planner chose whole-table scans and hash joins, and a batch cost
        //   more than the last; with scans priced out it probes the indexes.
        // - No JIT: pricing scans out inflates cost estimates past the JIT
        //   threshold, and compiling a statement (tens to hundreds of ms)
        //   costs far more than running it.
        // - `switchboard.placer`: tells the add-channel trigger that this
        //   session has checked the pair itself (migration 20261127000000).
        let options = PgConnectOptions::from_str(url)?.application_name("switchboard").options([
            ("plan_cache_mode", "force_generic_plan"),
            ("enable_seqscan", "off"),
            ("enable_hashjoin", "off"),
            ("enable_mergejoin", "off"),
            ("jit", "off"),
            ("switchboard.placer", "on"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        Ok(Store { pool, events: true })
    }

    /// Wraps an existing pool (tests).
    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool, events: true }
    }

    /// The same store, writing events to the outbox or not.
    pub fn with_events(self, events: bool) -> Store {
        Store { events, ..self }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// Answers whether Postgres is reachable (for health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Places `items` in one transaction, in order; returns one outcome per
    /// item and what else the batch did. On error nothing of it is written.
    pub async fn apply_batch(&self, items: &[&Item], policy: &Policy) -> Result<Placed, StoreError> {
        self.apply(items, policy, None).await
    }

    /// Like [`Store::apply_batch`], but gives up (an error, nothing written)
    /// when any lock is waited for longer than `lock_timeout`: for shared
    /// transactions, which must not hold other partitions behind one that
    /// is blocked.
    pub async fn apply_batch_waiting_at_most(
        &self,
        items: &[&Item],
        policy: &Policy,
        lock_timeout: Duration,
    ) -> Result<Placed, StoreError> {
        self.apply(items, policy, Some(lock_timeout)).await
    }

    async fn apply(
        &self,
        items: &[&Item],
        policy: &Policy,
        lock_timeout: Option<Duration>,
    ) -> Result<Placed, StoreError> {
        let mut conn = self.pool.acquire().await?;
        match place_on(&mut conn, items, policy, lock_timeout, self.events).await {
            Err(err) if err.is_outdated_prepared_statement() => {
                // Nothing was written (the transaction rolled back). The
                // connection's prepared statements are what failed: it
                // forgets them, and the batch goes again at once.
                tracing::info!(error = %err, "A migration changed what a prepared statement returns; preparing the statements again.");
                conn.clear_cached_statements().await?;
                place_on(&mut conn, items, policy, lock_timeout, self.events).await
            }
            placed => placed,
        }
    }
}

/// Places `items` in one transaction on `conn`.
async fn place_on(
    conn: &mut PgConnection,
    items: &[&Item],
    policy: &Policy,
    lock_timeout: Option<Duration>,
    events: bool,
) -> Result<Placed, StoreError> {
    let messages: Vec<&InboundMessage> = items.iter().map(|i| &i.message).collect();
    let started = std::time::Instant::now();
    let mut tx = conn.begin().await?;
    if let Some(timeout) = lock_timeout {
        // Transaction-scoped: the pooled connection keeps its default.
        sqlx::query("SELECT set_config('lock_timeout', $1, true)")
            .bind(format!("{}ms", timeout.as_millis().max(1)))
            .execute(&mut *tx)
            .await?;
    }
    let stored = snapshot::stored_references(&mut tx, &messages).await?;
    let keys = locks::keys_for(messages.iter().copied(), &stored);
    locks::acquire(&mut tx, &keys).await?;
    let locked = started.elapsed();
    let mut snapshot = snapshot::fetch(&mut tx, &messages).await?;
    snapshot::threads(&mut tx, &messages, policy, &mut snapshot).await?;
    snapshot::participation(&mut tx, &messages, policy, &mut snapshot).await?;
    let fetched = started.elapsed();
    let plan = batch::plan_batch(&messages, snapshot, policy, Uuid::now_v7);
    let inserted = writes::write(&mut tx, items, &plan).await?;
    if events {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let links: Vec<outbox::InsertedLink> = inserted.iter().map(|i| i.link.clone()).collect();
        let ends = outbox::chain_ends(&mut tx, &links).await?;
        outbox::insert(&mut tx, &outbox::events(items, &plan, &links, &ends, &time)).await?;
    }
    let written = started.elapsed();
    tx.commit().await?;
    // Messages are written in chunks, but one larger than a chunk still
    // grew the connection's buffer to its size, which it would keep.
    if writes::outgrows_a_chunk(&messages) {
        conn.shrink_buffers();
    }
    tracing::debug!(
        messages = items.len(),
        lock_ms = locked.as_millis() as u64,
        snapshot_ms = (fetched - locked).as_millis() as u64,
        write_ms = (written - fetched).as_millis() as u64,
        commit_ms = (started.elapsed() - written).as_millis() as u64,
        "Batch placed."
    );
    let effects = BatchEffects {
        sender_refusals: plan.sender_refusals,
        reopens: plan.updates.iter().filter(|u| u.reopen).count() as u64,
        late_parent_merges: plan.merges.len() as u64,
        links: inserted.iter().fold(BTreeMap::new(), |mut by_kind, i| {
            let kind = if i.sibling { "sibling".to_owned() } else { i.link.kind.clone() };
            *by_kind.entry(kind).or_insert(0) += 1;
            by_kind
        }),
    };
    Ok(Placed { outcomes: plan.results.into_iter().map(Outcome::from).collect(), effects })
}

impl From<ItemResult> for Outcome {
    fn from(result: ItemResult) -> Outcome {
        match result {
            ItemResult::Duplicate => Outcome::Duplicate,
            ItemResult::Placed { rule, conversation_id, message_id, created } => {
                Outcome::Applied { rule, landed: Landed { conversation_id, message_id, created } }
            }
        }
    }
}
