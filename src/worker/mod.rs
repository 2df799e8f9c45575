//! The consuming worker (`switchboard run`), in named pieces:
//!
//! - [`reader`]: the loop that reads from Kafka, through the small
//!   [`Source`](crate::kafka::Source) trait. It turns records, rebalances,
//!   task news and time into partition events; it never waits on a
//!   partition.
//! - [`lifecycle`]: one partition's state (assigned, reading, paused,
//!   restarting, draining) and all its transitions, in one function.
//! - [`partitions`]: the partitions by key, and a read-only view of them.
//! - [`partition`]: one task per partition, placing batches in offset order
//!   through a batch [`Step`](partition::Step); stopped one way.
//! - [`buffer`]: what lies between the two, bounded in records and bytes; a
//!   full buffer pauses its partition alone on the consumer.
//! - [`handover`]: rebalances; a revoked partition's batch finishes (or is
//!   abandoned at `drain_timeout`) before its new owner reads it.
//! - [`end`]: `--stop-at-end`, over every partition of the input topics.
//! - [`batch`] and [`retry`]: one batch step, and trying again as the failure
//!   policy ([`crate::failure`]) says.
//! - [`isolate`]: a batch that keeps failing is split to find the record
//!   that causes it; [`dead_letters`]: publishing dead letters, truncated
//!   when the broker refuses them for their size.
//! - [`coalesce`]: batches of several partitions ready at once share a transaction.
//! - [`lock_budget`]: batches cut so the pool never exhausts Postgres's lock table.
//!
//! A stop request ends reading, lets in-flight batches finish for up to
//! `shutdown_timeout`, commits what finished, and leaves the group.

mod allocator;
mod batch;
mod buffer;
mod coalesce;
mod dead_letters;
mod end;
#[cfg(test)]
mod fake;
mod handover;
mod isolate;
mod lifecycle;
mod lock_budget;
mod partition;
mod partitions;
pub mod preflight;
mod reader;
mod reporter;
mod retry;
mod test_hooks;
#[cfg(test)]
mod tests;

pub use batch::Pipeline;
pub use lifecycle::{Lifecycle, PartitionView};
pub use partitions::Partitions;
pub use retry::{Interrupted, RetryPolicy};

use crate::config::Settings;
use crate::kafka::{Consumer, Publisher, Source};
use crate::sidecar::Sidecar;
use crate::stats::{Snapshot, Stats};
use crate::store::Store;
use crate::telemetry::PartitionFlow;
use buffer::Limits;
use end::EndOfTopics;
use lifecycle::Hands;
use partition::{PanicHook, Spawner};
use reader::{ReadEnd, Reader};
use std::future::Future;
use std::sync::Arc;

/// How a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Until `shutdown` resolves.
    Forever,
    /// Also stop once every partition of the input topics has its committed
    /// offset at the end it had when the run started (replays, backfills,
    /// load tests, tests), whichever member placed it.
    StopAtEnd,
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub stats: Snapshot,
}

/// Why a run ended with an error although it stopped in order.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// In-flight batches did not finish within `shutdown_timeout`; they were
    /// abandoned, their offsets not committed (the next run places them).
    #[error("in-flight batches of {0:?} did not finish within the shutdown timeout; abandoned uncommitted")]
    ShutdownTimedOut(Vec<String>),
    /// `--stop-at-end` waited `stop_at_end_timeout` for these partitions.
    #[error("the topics were not consumed to their end in time; still short: {0:?}")]
    EndNotReached(Vec<String>),
}

/// The batch size and the locks per transaction that keep the pool within
/// Postgres's lock table; the configured size, and Postgres's default table,
/// when Postgres cannot be asked yet (it is then down, and batches wait for
/// it anyway; the next start checks again).
async fn lock_budget(settings: &Settings, store: &Store) -> lock_budget::Budget {
    let configured = settings.worker.batch_max_records;
    let pool = u64::from(settings.database.max_connections);
    let table = match tokio::time::timeout(std::time::Duration::from_secs(10), store.lock_table()).await {
        Ok(Ok(table)) => table,
        _ => {
            tracing::warn!("Could not read Postgres's lock table size; batches keep their configured size.");
            let assumed = lock_budget::size(lock_budget::DEFAULT_LOCK_TABLE, pool, 100, configured);
            return lock_budget::Budget { batch_records: configured, ..assumed };
        }
    };
    let budget = lock_budget::size(table.capacity(), pool, table.connections, configured);
    if budget.batch_records < configured {
        tracing::warn!(
            configured,
            batch_max_records = budget.batch_records,
            lock_table = table.capacity(),
            pool,
            max_locks_per_transaction_needed = budget.locks_per_transaction_needed,
            "Batches are cut to fit Postgres's lock table; set max_locks_per_transaction to the value needed for the configured size.",
        );
    }
    budget
}

/// Consumes until `shutdown` resolves (or the end, per `mode`), then
/// finishes in-flight batches, commits offsets and returns.
pub async fn run(settings: &Settings, mode: Mode, shutdown: impl Future<Output = ()>) -> anyhow::Result<RunReport> {
    run_observed(settings, mode, shutdown, Partitions::default()).await
}

/// Like [`run`], with the partitions' state readable through `partitions`
/// while it runs (for health checks and metrics).
pub(crate) async fn run_observed(
    settings: &Settings,
    mode: Mode,
    shutdown: impl Future<Output = ()>,
    partitions: Partitions,
) -> anyhow::Result<RunReport> {
    let w = &settings.worker;
    preflight::check(settings).await?;
    allocator::return_large_blocks_to_the_system();
    let stats = Arc::new(Stats::default());
    let store = Store::connect_lazy(&settings.database.url, settings.database.max_connections)?
        .with_events(settings.events.enabled);
    let budget = lock_budget(settings, &store).await;
    let limits = Limits {
        batch_records: budget.batch_records,
        batch_bytes: w.batch_max_bytes,
        partition_records: w.partition_queue_records,
        partition_bytes: w.partition_queue_bytes,
    };
    let policy = settings.policy()?;
    // A shared transaction holds no more than one batch may: the lock
    // budget sized one batch, and it holds for one shared transaction.
    let coalescer = (w.shared_transactions > 0 && limits.batch_records > 1).then(|| {
        // "Small" is a fraction of a full batch as the lock budget left it,
        // in records and in bytes: a few large emails are not shared either.
        let fraction = w.shared_batch_fraction;
        let caps = coalesce::Caps {
            batch_records: ((limits.batch_records as f64 * fraction) as usize).max(1),
            batch_bytes: (limits.batch_bytes as f64 * fraction) as usize,
            records: limits.batch_records,
            bytes: limits.batch_bytes,
        };
        coalesce::Coalescer::start(
            w.shared_transactions,
            caps,
            w.shared_lock_timeout,
            store.clone(),
            policy.clone(),
            stats.clone(),
        )
    });
    let pipeline = Arc::new(Pipeline {
        store,
        publisher: Publisher::new(&settings.kafka)?,
        dlq_topic: settings.kafka.topics.dlq.clone(),
        policy,
        max_record_bytes: w.max_record_bytes,
        retry: RetryPolicy { initial: w.retry_initial, max: w.retry_max },
        failure_attempts: w.failure_attempts.max(1),
        locks_per_transaction: budget.locks_per_batch,
        stats: stats.clone(),
        coalescer,
        panic_placing: test_hooks::PanicPlacing::parse(&w.test_panic_placing),
    });
    if pipeline.panic_placing.is_some() {
        tracing::warn!(at = %w.test_panic_placing, "worker.test_panic_placing is set: placing that record panics, for a test.");
    }
    // Deduplicated: two channels may share a topic.
    let mut topics = settings.kafka.topics.inputs().to_vec();
    topics.sort_unstable();
    topics.dedup();
    let consumer = Consumer::subscribe(&settings.kafka, &topics)?;
    // The metrics and health endpoint and the lag poller (crate::telemetry).
    let sidecar = Sidecar::start(settings, stats.clone(), pipeline.store.clone(), consumer.clone()).await?;
    let telemetry = sidecar.telemetry.clone();
    // Conversation events: published beside placement, never in its way.
    let (events_stop, events_stop_rx) = tokio::sync::watch::channel(false);
    let events = match settings.events.enabled {
        true => {
            let publisher = crate::publisher::Publisher::new(settings, pipeline.store.clone(), telemetry.clone())?;
            Some(tokio::spawn(publisher.run(events_stop_rx, w.shutdown_timeout)))
        }
        false => None,
    };
    // Flow control's own view (buffers, pauses) feeds the in-flight gauges.
    let flow_gauges = tokio::spawn({
        let (partitions, telemetry) = (partitions.clone(), telemetry.clone());
        async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tick.tick().await;
                let flows: Vec<PartitionFlow> = partitions
                    .view()
                    .into_iter()
                    .map(|v| PartitionFlow {
                        paused: v.state == Lifecycle::Paused,
                        topic: v.topic,
                        partition: v.partition,
                        buffered_records: v.buffered_records,
                        buffered_bytes: v.buffered_bytes,
                    })
                    .collect();
                telemetry.flow(&flows);
            }
        }
    });
    tracing::info!(group = %settings.kafka.group_id, topics = ?topics, "Consuming.");

    let end = match mode {
        Mode::StopAtEnd => Some(EndOfTopics::new(consumer.clone(), &topics, w.stop_at_end_timeout)),
        Mode::Forever => None,
    };
    let (notes_tx, notes) = tokio::sync::mpsc::unbounded_channel();
    let panic_hook = PanicHook::parse(&w.test_panic_at).map(Arc::new);
    if panic_hook.is_some() {
        tracing::warn!(at = %w.test_panic_at, "worker.test_panic_at is set: a partition task will panic once, for a test.");
    }
    let source: Arc<dyn Source> = consumer.clone();
    let spawner = Spawner {
        step: pipeline,
        source: source.clone(),
        limits,
        notes: notes_tx.clone(),
        panic_hook,
        telemetry: telemetry.clone(),
    };
    let hands = Hands {
        source: source.clone(),
        spawner,
        limits,
        restart: RetryPolicy { initial: w.retry_initial, max: w.retry_max },
        quarantine_after: w.failure_attempts.max(1),
        telemetry,
    };
    let mut reader =
        Reader { source, partitions: partitions.clone(), hands, notes, notes_tx, drain_timeout: w.drain_timeout };
    let ended = reader.run(end, shutdown).await;
    let late = reader.finish(w.shutdown_timeout).await;

    let commit_consumer = consumer.clone();
    tokio::task::spawn_blocking(move || commit_consumer.commit()).await?;
    consumer.leave().await;
    // What this run committed goes out before it exits, within the
    // shutdown timeout; the rest at the next start.
    let _ = events_stop.send(true);
    if let Some(events) = events {
        let abort = events.abort_handle();
        if tokio::time::timeout(w.shutdown_timeout + std::time::Duration::from_secs(5), events).await.is_err() {
            // Stuck on a broker that does not answer: its rows stay in the
            // outbox for the next start.
            abort.abort();
        }
    }
    flow_gauges.abort();
    sidecar.stop().await;
    tracing::info!("Offsets committed; left the group.");

    let describe = |keys: Vec<crate::kafka::PartitionKey>| keys.into_iter().map(|(t, p)| format!("{t}/{p}")).collect();
    match ended {
        _ if !late.is_empty() => Err(RunError::ShutdownTimedOut(describe(late)).into()),
        ReadEnd::GaveUp(short) => Err(RunError::EndNotReached(short).into()),
        ReadEnd::Stopped | ReadEnd::AtEnd => Ok(RunReport { stats: stats.snapshot() }),
    }
}
