//! The consuming worker (`switchboard run`): one consumer for the three
//! input topics, one task per partition, a clean stop on request or, with
//! `stop_at_end`, once every assigned partition is consumed up to the end it
//! had when first seen.

mod batch;
mod partition;
mod retry;

pub use batch::Pipeline;
pub use retry::{Interrupted, RetryPolicy};

use crate::config::Settings;
use crate::kafka::{Consumer, PartitionKey, Publisher};
use crate::stats::{Snapshot, Stats};
use crate::store::Store;
use crate::telemetry::Sidecar;
use futures::FutureExt as _;
use partition::Progress;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// How a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Until `shutdown` resolves.
    Forever,
    /// Also stop once every assigned partition reached the end it had when
    /// the run first saw it (replays, backfills, tests).
    StopAtEnd,
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub stats: Snapshot,
}

/// Consumes until `shutdown` resolves (or the end, per `mode`), then
/// finishes in-flight batches, commits offsets and returns.
pub async fn run(settings: &Settings, mode: Mode, shutdown: impl Future<Output = ()>) -> anyhow::Result<RunReport> {
    let stats = Arc::new(Stats::default());
    let store = Store::connect_lazy(&settings.database.url, settings.database.max_connections)?;
    let pipeline = Arc::new(Pipeline {
        store,
        publisher: Publisher::new(&settings.kafka)?,
        dlq_topic: settings.kafka.topics.dlq.clone(),
        policy: settings.policy()?,
        max_record_bytes: settings.worker.max_record_bytes,
        retry: RetryPolicy { initial: settings.worker.retry_initial, max: settings.worker.retry_max },
        stats: stats.clone(),
    });
    let consumer = Consumer::subscribe(&settings.kafka, &settings.kafka.topics.inputs())?;
    // telemetry: the metrics/health endpoint and the lag poller (crate::telemetry).
    let sidecar = Sidecar::start(settings, stats.clone(), pipeline.store.clone(), consumer.clone()).await?;
    let telemetry = sidecar.telemetry.clone();
    tracing::info!(group = %settings.kafka.group_id, topics = ?settings.kafka.topics.inputs(), "Consuming.");

    let (stop_tx, stop_rx) = watch::channel(false);
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<Progress>();
    let mut queues: HashMap<PartitionKey, mpsc::Sender<crate::record::SourceRecord>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut end = EndTracker::default();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => {
                tracing::info!("Stop requested; finishing in-flight batches.");
                break;
            }
            Some(p) = progress_rx.recv() => end.progressed(p),
            _ = tick.tick() => {
                if mode == Mode::StopAtEnd && end.all_done(&consumer) {
                    tracing::info!("Every assigned partition is consumed to its end.");
                    break;
                }
            }
            next = consumer.next() => match next {
                Ok(record) => {
                    telemetry.consumed(&record);
                    let key = (record.topic.clone(), record.partition);
                    let queue = queues.entry(key.clone()).or_insert_with(|| {
                        let (tx, rx) = mpsc::channel(settings.worker.partition_queue_records);
                        tasks.spawn(partition::run(
                            key.clone(), rx, pipeline.clone(), consumer.clone(),
                            settings.worker.batch_max_records, progress_tx.clone(), stop_rx.clone(),
                            telemetry.clone(),
                        ));
                        tx
                    });
                    // A full queue makes this wait: backpressure on the consumer.
                    // A stop request still gets through; the record in hand
                    // is not done, so it is redelivered later.
                    tokio::select! {
                        sent = queue.send(record) => if let Err(unsent) = sent {
                            telemetry.dropped(&unsent.0);
                            tracing::warn!(topic = %key.0, partition = key.1, "Partition task is gone; its records will be redelivered.");
                        },
                        _ = &mut shutdown => {
                            tracing::info!("Stop requested; finishing in-flight batches.");
                            break;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Kafka consumer error.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }

    // Closing the queues lets each task finish the records it holds; the
    // stop flag makes a task that is waiting out a failure (Postgres down)
    // give up at once instead of holding the stop forever.
    drop(queues);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    let commit_consumer = consumer.clone();
    tokio::task::spawn_blocking(move || commit_consumer.commit_now()).await?;
    consumer.leave().await;
    sidecar.stop().await;
    tracing::info!("Offsets committed; left the group.");
    Ok(RunReport { stats: stats.snapshot() })
}

/// How long `--stop-at-end` waits for partitions when it has none.
const EMPTY_ASSIGNMENT_GRACE: Duration = Duration::from_secs(60);

/// Knows, per partition, the end to reach and how far the worker got.
#[derive(Default)]
struct EndTracker {
    /// The end each partition had when first seen in a fetch response.
    targets: HashMap<PartitionKey, i64>,
    /// Where each partition is: the next offset not yet done.
    positions: HashMap<PartitionKey, i64>,
    /// When each assigned partition was first seen.
    first_seen: HashMap<PartitionKey, Instant>,
    /// A lookup of committed offsets running on the blocking pool.
    lookup: Option<tokio::task::JoinHandle<HashMap<PartitionKey, i64>>>,
    /// When the assignment was first seen empty, to give up waiting for one.
    empty_since: Option<Instant>,
}

impl EndTracker {
    fn progressed(&mut self, p: Progress) {
        let pos = self.positions.entry(p.partition).or_insert(p.next_offset);
        *pos = (*pos).max(p.next_offset);
    }

    fn all_done(&mut self, consumer: &Arc<Consumer>) -> bool {
        let assigned: Vec<PartitionKey> = consumer.assignment().into_iter().collect();
        if assigned.is_empty() {
            // A member that got no partitions has nothing to wait for, but an
            // assignment may still come: the first one takes a moment, and a
            // crashed member's partitions move only once its session times
            // out (librdkafka's default is 45 s).
            let since = *self.empty_since.get_or_insert_with(Instant::now);
            return since.elapsed() > EMPTY_ASSIGNMENT_GRACE;
        }
        self.empty_since = None;
        for key in &assigned {
            self.first_seen.entry(key.clone()).or_insert_with(Instant::now);
            if !self.targets.contains_key(key) {
                if let Some(end) = consumer.fetched_end(&key.0, key.1) {
                    self.targets.insert(key.clone(), end);
                }
            }
        }
        self.look_up_idle_partitions(consumer, &assigned);
        assigned.iter().all(|k| match (self.targets.get(k), self.positions.get(k)) {
            // An empty partition is at its end whatever the group committed.
            (Some(0), _) => true,
            (Some(target), Some(position)) => position >= target,
            _ => false,
        })
    }

    /// A partition that delivered nothing may already be at its end for this
    /// group: its position is then the committed offset. Asking the broker
    /// blocks, and librdkafka answers only while the consumer is polled, so
    /// the question runs on the blocking pool, once a partition has been
    /// quiet for a second.
    fn look_up_idle_partitions(&mut self, consumer: &Arc<Consumer>, assigned: &[PartitionKey]) {
        if let Some(lookup) = self.lookup.take_if(|l| l.is_finished()) {
            if let Some(Ok(found)) = lookup.now_or_never() {
                for (key, start) in found {
                    self.positions.entry(key).or_insert(start);
                }
            }
        }
        if self.lookup.is_some() {
            return;
        }
        let idle: Vec<PartitionKey> = assigned
            .iter()
            .filter(|k| !self.positions.contains_key(*k) && self.targets.get(*k) != Some(&0))
            .filter(|k| self.first_seen.get(*k).is_some_and(|t| t.elapsed() > Duration::from_secs(1)))
            .cloned()
            .collect();
        if !idle.is_empty() {
            let consumer = consumer.clone();
            self.lookup = Some(tokio::task::spawn_blocking(move || consumer.start_offsets(&idle)));
        }
    }
}
