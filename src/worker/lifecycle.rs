//! A partition's life on this member: its state, and every transition in
//! one function, [`Partition::on`], driven by [`Event`]s. Only the
//! consuming loop calls it (single writer), for records and rebalances the
//! consumer delivers, news from the partition's task, its own clock, and
//! shutdown.
//!
//! ```text
//!  Assigned ──first record──▶ Reading ◀──buffer drained──▶ Paused
//!                               ▲  │                          │
//!                  batch done   │  │ task failed              │ task failed
//!                               │  ▼                          │
//!                             Restarting ◀────────────────────┘
//!
//!  any state ──Revoke / Stop / Abandon──▶ Draining ──task ended──▶ (removed)
//! ```
//!
//! A batch being placed is not a state of its own: the loop never waits
//! for one, and reading, pausing and restarting go on around it. Nor is
//! "revoked": a drained partition is given away and forgotten.

use super::buffer::{Limits, PartitionBuffer};
use super::partition::{Spawner, Stop, Task};
use super::retry::RetryPolicy;
use crate::kafka::{PartitionKey, Source};
use crate::record::SourceRecord;
use crate::telemetry::Telemetry;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where a partition is in its life on this member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Assigned to this member; no record read yet, so no task (an idle
    /// partition costs nothing).
    Assigned,
    /// Records flow from the consumer to the partition's task.
    Reading,
    /// The buffer is full: the partition is paused on the consumer until its
    /// task has drained it to half. Other partitions keep flowing.
    Paused,
    /// The task failed (panicked); a new one reads again from the last
    /// stored offset after a backoff, until its first batch is done.
    Restarting,
    /// Being given away (rebalance) or stopped (shutdown): no new records,
    /// the queue is dropped, the batch in hand finishes or is abandoned.
    Draining,
}

impl Lifecycle {
    /// The state's name, as logs and views show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Assigned => "assigned",
            Lifecycle::Reading => "reading",
            Lifecycle::Paused => "paused",
            Lifecycle::Restarting => "restarting",
            Lifecycle::Draining => "draining",
        }
    }
}

/// What can happen to a partition.
#[derive(Debug)]
pub(super) enum Event {
    /// The consumer delivered one of its records.
    Record(SourceRecord),
    /// Its task placed a batch: everything before `next_offset` is stored.
    BatchDone { generation: u64, next_offset: i64 },
    /// Its task panicked; the batch in hand is unfinished, nothing stored.
    TaskFailed { generation: u64, panic: String },
    /// A seek asked for by a transition took effect in the consumer.
    Seeked,
    /// Time passed: a paused partition whose buffer drained may resume.
    Tick,
    /// A rebalance takes it away: finish the batch in hand, then end.
    Revoke,
    /// The worker stops: as `Revoke`, and a batch waiting out a transient
    /// failure gives up.
    Stop,
    /// A deadline passed, or the partition was lost: drop the batch in hand.
    Abandon,
}

/// What a transition may act on outside the partition.
pub(super) struct Hands {
    /// Pause, resume and seek.
    pub source: Arc<dyn Source>,
    /// Starts a partition's task.
    pub spawner: Spawner,
    /// When a buffer is full, and when it has drained.
    pub limits: Limits,
    /// Backoff between restarts of a failing task.
    pub restart: RetryPolicy,
    /// Restarts from the same offset after which the task places that
    /// batch record by record and dead-letters the record that panics.
    pub quarantine_after: u32,
    /// Counts what is consumed, for /metrics.
    pub telemetry: Arc<Telemetry>,
}

/// One partition on this member.
pub(super) struct Partition {
    key: PartitionKey,
    state: Lifecycle,
    /// Bumped on every restart, so late news from an older task is ignored.
    generation: u64,
    buffer: Arc<PartitionBuffer>,
    /// `None` until the first record.
    task: Option<Task>,
    /// The offset the next record should have; lower ones are redeliveries.
    next_expected: Option<i64>,
    /// Seeks asked for and not yet taken effect: records delivered
    /// meanwhile were fetched from the old position and are dropped.
    seeking: u32,
    /// The first offset this member read, where a restart goes back to when
    /// nothing was stored yet.
    first_offset: Option<i64>,
    /// Everything before this offset is placed and its offset stored.
    done_up_to: Option<i64>,
    restarts: u32,
    /// Restarts in a row from the offset in `restarted_at`, with no batch
    /// done since: the backoff and the quarantine count these.
    restarts_here: u32,
    restarted_at: Option<i64>,
}

impl Partition {
    /// A partition just assigned to this member.
    pub(super) fn assigned(key: PartitionKey) -> Partition {
        Partition {
            key,
            state: Lifecycle::Assigned,
            generation: 0,
            buffer: Arc::default(),
            task: None,
            next_expected: None,
            seeking: 0,
            first_offset: None,
            done_up_to: None,
            restarts: 0,
            restarts_here: 0,
            restarted_at: None,
        }
    }

    /// Every transition.
    pub(super) fn on(&mut self, event: Event, hands: &Hands) {
        use Lifecycle::*;
        match (self.state, event) {
            // Its next owner (or the next run) reads it again.
            (Draining, Event::Record(_)) => {}
            (_, Event::Record(record)) => self.take(record, hands),
            (state, Event::BatchDone { generation, next_offset }) if generation == self.generation => {
                self.done_up_to = Some(next_offset);
                self.restarts_here = 0;
                match state {
                    Restarting => self.state = Reading,
                    Paused => self.resume_if_drained(hands),
                    _ => {}
                }
            }
            (_, Event::Seeked) => self.seeking = self.seeking.saturating_sub(1),
            (Paused, Event::Tick) => self.resume_if_drained(hands),
            (Draining, Event::TaskFailed { generation, panic }) if generation == self.generation => {
                tracing::error!(topic = %self.key.0, partition = self.key.1, panic, "Partition task failed while being handed over; its new owner reads it again.");
            }
            (_, Event::TaskFailed { generation, panic }) if generation == self.generation => {
                self.restart(&panic, hands)
            }
            (_, Event::Revoke) => self.drain(Stop::Finish),
            (_, Event::Stop) => self.drain(Stop::Interrupt),
            (_, Event::Abandon) => self.drain(Stop::Abandon),
            // News from an older task, or a tick with nothing to do.
            _ => {}
        }
    }

    /// Moves a record into the buffer, starting the task with the first
    /// one; pauses the partition when the buffer is full. Never waits.
    fn take(&mut self, record: SourceRecord, hands: &Hands) {
        // Fetched before a seek: it comes again after it. Below the
        // position expected: a redelivery of a record already taken.
        if self.seeking > 0 || self.next_expected.is_some_and(|n| record.offset < n) {
            return;
        }
        if self.state == Lifecycle::Assigned {
            self.task = Some(hands.spawner.spawn(
                self.key.clone(),
                self.generation,
                self.buffer.clone(),
                Duration::ZERO,
                false,
            ));
            self.state = Lifecycle::Reading;
        }
        self.next_expected = Some(record.offset + 1);
        self.first_offset.get_or_insert(record.offset);
        hands.telemetry.consumed(&record);
        let held = self.buffer.push(record);
        if matches!(self.state, Lifecycle::Reading | Lifecycle::Restarting) && hands.limits.full(held) {
            hands.source.pause(&self.key);
            self.state = Lifecycle::Paused;
            tracing::debug!(topic = %self.key.0, partition = self.key.1, records = held.records, bytes = held.bytes, "Partition paused: its buffer is full.");
        }
    }

    /// Resumes the partition once its buffer has drained to half.
    fn resume_if_drained(&mut self, hands: &Hands) {
        if !hands.limits.drained(self.buffer.held()) {
            return;
        }
        // librdkafka dropped what it prefetched for the paused partition
        // and rewinds to the record after the last one it delivered; the
        // explicit seek to the first record not yet buffered makes that
        // independent of librdkafka's version.
        if let Some(next) = self.next_expected {
            self.seek(next, hands);
        }
        hands.source.resume(&self.key);
        self.state = Lifecycle::Reading;
        tracing::debug!(topic = %self.key.0, partition = self.key.1, "Partition resumed.");
    }

    /// The task failed: its unfinished batch stored nothing, so a new task
    /// reads the partition again from its last stored offset, after a
    /// backoff that grows with each failure from there. Other partitions go
    /// on. After `quarantine_after` failures in a row from one offset, the
    /// new task places that batch record by record and dead-letters the
    /// record that panics: no record holds its partition forever.
    fn restart(&mut self, panic: &str, hands: &Hands) {
        let Some(from) = self.done_up_to.or(self.first_offset) else { return };
        self.restarts += 1;
        if self.restarted_at != Some(from) {
            (self.restarted_at, self.restarts_here) = (Some(from), 0);
        }
        self.restarts_here += 1;
        let quarantine = self.restarts_here >= hands.quarantine_after.max(1);
        let delay = restart_delay(hands.restart, self.restarts_here);
        tracing::error!(topic = %self.key.0, partition = self.key.1, panic, from_offset = from, restarts = self.restarts, quarantine, retry_in_ms = delay.as_millis() as u64, "Partition task failed; restarting it from its last stored offset.");
        self.buffer.clear();
        self.buffer = Arc::default();
        self.generation += 1;
        self.task =
            Some(hands.spawner.spawn(self.key.clone(), self.generation, self.buffer.clone(), delay, quarantine));
        self.next_expected = Some(from);
        // Fetch the failed batch and everything after it again. A seek
        // also discards what librdkafka prefetched from the old position.
        self.seek(from, hands);
        if self.state == Lifecycle::Paused {
            hands.source.resume(&self.key);
        }
        self.state = Lifecycle::Restarting;
    }

    fn seek(&mut self, offset: i64, hands: &Hands) {
        self.seeking += 1;
        hands.source.seek(&self.key, offset);
    }

    /// No more records; the queue is dropped and the task stopped at `level`.
    fn drain(&mut self, level: Stop) {
        self.state = Lifecycle::Draining;
        self.buffer.clear();
        if let Some(task) = &self.task {
            task.stop(level);
        }
    }

    /// What to wait on for the task's end; `None` when there is no task
    /// running.
    pub(super) fn running(&self) -> Option<watch::Receiver<bool>> {
        self.task.as_ref().and_then(Task::running)
    }

    /// The partition as a read-only view.
    pub(super) fn view(&self) -> PartitionView {
        let held = self.buffer.held();
        PartitionView {
            topic: self.key.0.clone(),
            partition: self.key.1,
            state: self.state,
            buffered_records: held.records,
            buffered_bytes: held.bytes,
            in_flight_records: held.in_flight_records,
            in_flight_bytes: held.in_flight_bytes,
            done_up_to: self.done_up_to,
            restarts: self.restarts,
        }
    }
}

/// The wait before the `restarts`-th restart of a failing partition task:
/// doubling from `initial`, capped at `max`.
fn restart_delay(policy: RetryPolicy, restarts: u32) -> Duration {
    policy.initial.saturating_mul(1 << restarts.min(16)).min(policy.max)
}

/// One partition as this member sees it, at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    /// The partition's topic.
    pub topic: String,
    /// The partition's number in its topic.
    pub partition: i32,
    /// Where it is in its life on this member.
    pub state: Lifecycle,
    /// Records held (queued plus the batch being placed).
    pub buffered_records: usize,
    /// Bytes held (queued plus the batch being placed).
    pub buffered_bytes: usize,
    /// Of those, the batch being placed now.
    pub in_flight_records: usize,
    /// Bytes of the batch being placed now.
    pub in_flight_bytes: usize,
    /// Everything before this offset is placed and stored for commit.
    pub done_up_to: Option<i64>,
    /// How often the partition's task was restarted after a failure.
    pub restarts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_doubling_up_to_the_cap() {
        let p = RetryPolicy { initial: Duration::from_millis(100), max: Duration::from_secs(30) };
        assert_eq!(restart_delay(p, 1), Duration::from_millis(200));
        assert_eq!(restart_delay(p, 2), Duration::from_millis(400));
        assert_eq!(restart_delay(p, 40), Duration::from_secs(30));
    }
}
