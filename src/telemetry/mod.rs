//! What an operator sees of a running worker: the live state behind
//! `/metrics`, `/healthz` and `/readyz` (served by [`crate::http`], started
//! beside the worker by [`crate::sidecar`]). An observer: the worker tells it
//! what happened and it never calls back into the worker or the HTTP layer.
//!
//! The worker reports into one [`Telemetry`] through a handful of calls (a
//! record consumed, a batch done or abandoned, a partition task started);
//! the [`lag`] poller adds what only the broker knows (high watermarks and
//! the group's committed offsets). Nothing here blocks the consuming loop:
//! every call takes a short lock or bumps an atomic.

mod histogram;
pub(crate) mod lag;
pub(crate) mod record_log;
mod render;
mod state;

pub(crate) use histogram::{ByLabel, Histogram};
pub(crate) use state::{PartitionTask, Readiness};

use crate::kafka::PartitionKey;
use crate::record::SourceRecord;
use crate::stats::Stats;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Batch sizes in records.
const BATCH_RECORDS: &[f64] = &[1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0];
/// Batch commit and end-to-end latencies in seconds.
const SECONDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
/// Finer at the low end, where the latency targets are (p99 under 50 ms).
const LATENCY_SECONDS: &[f64] = &[
    0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0,
];

/// One partition as flow control holds it, as the worker reports it to
/// [`Telemetry::flow`]. Telemetry owns this type so that it never needs the
/// worker's own types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartitionFlow {
    /// The partition's topic.
    pub topic: String,
    /// The partition's number in its topic.
    pub partition: i32,
    /// Records held (queued plus the batch being placed).
    pub buffered_records: usize,
    /// Bytes held (queued plus the batch being placed).
    pub buffered_bytes: usize,
    /// Paused on the consumer because its buffer is full.
    pub paused: bool,
}

/// The stages of a record's time in the worker, in order; each record is
/// observed once in each, so that its three values add up to its share of
/// the latency. Fixed label values: none comes from a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// In its partition's buffer until the partition's task takes it into
    /// a batch: the batch before it is still being placed.
    Buffered,
    /// Its batch waiting for a shared transaction's lane (zero when the
    /// batch is placed alone, also after a shared transaction that gave
    /// up: that attempt's time counts as placing).
    Lane,
    /// Decoding, the transaction (with any retries and splits), dead
    /// letters: until the batch is durable.
    Placing,
}

impl Stage {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Stage::Buffered => "buffered",
            Stage::Lane => "lane",
            Stage::Placing => "placing",
        }
    }
}

/// The live state of one worker process.
#[derive(Debug)]
pub(crate) struct Telemetry {
    /// The outcome counters shared with the pipeline and the run summary.
    pub stats: Arc<Stats>,
    /// Per-partition state, keyed by (topic, partition).
    partitions: Mutex<BTreeMap<PartitionKey, state::PartitionState>>,
    /// The broker as the lag poller last saw it.
    broker: Mutex<state::BrokerState>,
    batch_records: Histogram,
    batch_commit_seconds: Histogram,
    end_to_end_seconds: Histogram,
    worker_seconds: Histogram,
    /// The same two by input topic, so a channel's tail shows apart (light
    /// SMS records waiting behind heavy email, or not).
    end_to_end_by_topic: ByLabel,
    worker_by_topic: ByLabel,
    /// Where each record's share went (`stage`, see [`Stage`]): the three
    /// stages of a record add up to its `worker_seconds`.
    worker_by_stage: ByLabel,
    in_flight_records: AtomicI64,
    in_flight_bytes: AtomicI64,
    paused_partitions: AtomicI64,
    /// The events outbox as last counted, and its alarm bounds.
    outbox: Mutex<OutboxView>,
    event_publish_seconds: Histogram,
    /// How long a partition with work may go without progress before
    /// `/readyz` calls it stuck.
    stuck_after: Duration,
}

/// The outbox's size as last counted; `alarm` is set when events are on.
#[derive(Debug, Default)]
struct OutboxView {
    rows: u64,
    oldest_secs: f64,
    alarm: Option<(u64, Duration)>,
}

impl Telemetry {
    pub(crate) fn new(stats: Arc<Stats>, stuck_after: Duration) -> Arc<Telemetry> {
        Arc::new(Telemetry {
            stats,
            partitions: Mutex::default(),
            broker: Mutex::default(),
            batch_records: Histogram::new(BATCH_RECORDS),
            batch_commit_seconds: Histogram::new(SECONDS),
            end_to_end_seconds: Histogram::new(LATENCY_SECONDS),
            worker_seconds: Histogram::new(LATENCY_SECONDS),
            end_to_end_by_topic: ByLabel::new("topic", LATENCY_SECONDS),
            worker_by_topic: ByLabel::new("topic", LATENCY_SECONDS),
            worker_by_stage: ByLabel::new("stage", LATENCY_SECONDS),
            in_flight_records: AtomicI64::new(0),
            in_flight_bytes: AtomicI64::new(0),
            paused_partitions: AtomicI64::new(0),
            outbox: Mutex::default(),
            event_publish_seconds: Histogram::new(LATENCY_SECONDS),
            stuck_after,
        })
    }

    fn with_partition<T>(&self, key: &PartitionKey, f: impl FnOnce(&mut state::PartitionState) -> T) -> Option<T> {
        let mut map = self.partitions.lock().ok()?;
        let entry = map.entry(key.clone()).or_insert_with(state::PartitionState::new);
        Some(f(entry))
    }

    /// The consumer handed a record to its partition's task.
    pub(crate) fn consumed(&self, record: &SourceRecord) {
        self.with_partition(&(record.topic.clone(), record.partition), |p| {
            p.consumed += 1;
            // Until flow control's next view (`flow`) says otherwise.
            p.in_flight += 1;
        });
    }

    /// What flow control holds right now: the worker's own view of its
    /// partitions (buffered records and bytes, paused or not) sets the
    /// in-flight gauges, so records dropped from a buffer at a pause or a
    /// revocation never linger in them.
    pub(crate) fn flow(&self, partitions: &[PartitionFlow]) {
        let records: usize = partitions.iter().map(|p| p.buffered_records).sum();
        let bytes: usize = partitions.iter().map(|p| p.buffered_bytes).sum();
        let paused = partitions.iter().filter(|p| p.paused).count();
        self.in_flight_records.store(records as i64, Ordering::Relaxed);
        self.in_flight_bytes.store(bytes as i64, Ordering::Relaxed);
        self.set_paused_partitions(paused);
        for p in partitions {
            self.with_partition(&(p.topic.clone(), p.partition), |s| s.in_flight = p.buffered_records as u64);
        }
    }

    /// A batch of one partition is durable (applied or dead-lettered); its
    /// partition's task took it at `started`, after its records had been
    /// handed over at `received`, and it waited `lane_wait` for a shared
    /// transaction (`None`: placed alone). Its records are no longer in
    /// flight.
    pub(crate) fn batch_done(
        &self,
        key: &PartitionKey,
        batch: &[SourceRecord],
        received: &[Instant],
        started: Instant,
        lane_wait: Option<Duration>,
    ) {
        let done = Instant::now();
        let took = done.saturating_duration_since(started);
        self.batch_records.observe(batch.len() as f64);
        self.batch_commit_seconds.observe(took.as_secs_f64());
        let worker: Vec<f64> = received.iter().map(|at| done.saturating_duration_since(*at).as_secs_f64()).collect();
        self.worker_seconds.observe_all(worker.iter().copied());
        self.worker_by_topic.observe_all(&key.0, worker);
        let lane = lane_wait.unwrap_or_default().min(took);
        let buffered = received.iter().map(|at| started.saturating_duration_since(*at).as_secs_f64());
        self.worker_by_stage.observe_all(Stage::Buffered.label(), buffered);
        // The batch's two stages are the same for each of its records.
        self.worker_by_stage.observe_repeated(Stage::Lane.label(), lane.as_secs_f64(), received.len());
        self.worker_by_stage.observe_repeated(Stage::Placing.label(), (took - lane).as_secs_f64(), received.len());
        let now_ms = chrono::Utc::now().timestamp_millis();
        // Producer clocks can be ahead of ours; a negative latency says nothing.
        let end_to_end: Vec<f64> = batch
            .iter()
            .filter_map(|record| record.timestamp_ms.filter(|ts| *ts > 0 && *ts <= now_ms))
            .map(|ts| (now_ms - ts) as f64 / 1000.0)
            .collect();
        self.end_to_end_seconds.observe_all(end_to_end.iter().copied());
        self.end_to_end_by_topic.observe_all(&key.0, end_to_end);
        self.leave_flight(key, batch);
        self.with_partition(key, |p| {
            p.last_progress = Instant::now();
            if let Some(last) = batch.last() {
                p.next_offset = Some(last.offset + 1);
            }
        });
    }

    /// A batch was given up at a stop; it will be redelivered.
    pub(crate) fn batch_abandoned(&self, key: &PartitionKey, batch: &[SourceRecord]) {
        self.leave_flight(key, batch);
    }

    fn leave_flight(&self, key: &PartitionKey, batch: &[SourceRecord]) {
        // The gauges follow flow control's view (`flow`); this only keeps
        // the partition's count current between two looks at it.
        self.with_partition(key, |p| p.in_flight = p.in_flight.saturating_sub(batch.len() as u64));
    }

    /// Events are on: `/readyz` fails past these bounds of the outbox.
    pub(crate) fn outbox_alarm(&self, rows: u64, age: Duration) {
        if let Ok(mut o) = self.outbox.lock() {
            o.alarm = Some((rows, age));
        }
    }

    /// The outbox holds `rows`, the oldest for `oldest_secs`.
    pub(crate) fn outbox(&self, rows: i64, oldest_secs: f64) {
        if let Ok(mut o) = self.outbox.lock() {
            (o.rows, o.oldest_secs) = (rows.max(0) as u64, oldest_secs.max(0.0));
        }
    }

    /// The broker acknowledged events that waited this long in the outbox.
    pub(crate) fn events_acknowledged(&self, waited_secs: impl Iterator<Item = f64>) {
        self.event_publish_seconds.observe_all(waited_secs);
    }

    /// The number of partitions flow control has paused right now.
    pub(crate) fn set_paused_partitions(&self, n: usize) {
        self.paused_partitions.store(n as i64, Ordering::Relaxed);
    }

    /// A partition task starts; keep the guard for the task's life. A task
    /// that unwinds (a panic) marks its partition dead for `/healthz`.
    pub(crate) fn partition_task(self: &Arc<Self>, key: &PartitionKey) -> PartitionTask {
        self.with_partition(key, |p| p.task = state::TaskState::Running);
        PartitionTask::new(self.clone(), key.clone())
    }

    pub(crate) fn task_ended(&self, key: &PartitionKey, panicked: bool) {
        self.with_partition(key, |p| p.task = if panicked { state::TaskState::Died } else { state::TaskState::Ended });
    }

    /// What the lag poller learnt: the member's assignment and, per
    /// assigned partition, the high watermark and the committed offset.
    pub(crate) fn polled(&self, assignment: &[PartitionKey], offsets: &[(PartitionKey, Option<i64>, Option<i64>)]) {
        if let Ok(mut map) = self.partitions.lock() {
            for (key, p) in map.iter_mut() {
                let now_assigned = assignment.contains(key);
                if now_assigned && !p.assigned {
                    // Newly assigned: its stuck clock starts now, not at an old batch.
                    p.last_progress = Instant::now();
                }
                p.assigned = now_assigned;
            }
            for key in assignment {
                map.entry(key.clone()).or_insert_with(state::PartitionState::new).assigned = true;
            }
            for (key, high, committed) in offsets {
                if let Some(p) = map.get_mut(key) {
                    p.high_watermark = *high;
                    p.committed = *committed;
                }
            }
        }
    }

    /// The broker answered (Ok) or not (the error, for `/readyz`).
    pub(crate) fn broker_contact(&self, result: Result<(), String>) {
        if let Ok(mut b) = self.broker.lock() {
            match result {
                Ok(()) => {
                    b.last_ok = Some(Instant::now());
                    b.last_error = None;
                }
                Err(e) => b.last_error = Some(e),
            }
        }
    }

    /// The Prometheus text exposition of everything above.
    pub(crate) fn render(&self) -> String {
        render::render(self)
    }
}
