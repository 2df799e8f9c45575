//! The loop that reads from Kafka. It never waits on a partition: it polls
//! the consumer (which also serves rebalance callbacks), moves each record
//! into its partition's buffer, pauses a partition whose buffer is full and
//! resumes it when its task has drained it, and supervises the partition
//! tasks, restarting one that failed from its last stored offset.

use super::buffer::{Limits, PartitionBuffer};
use super::end::{EndCheck, EndOfTopics};
use super::lifecycle::Lifecycle;
use super::partition::{Spawner, TaskEvent};
use super::partitions::{Partitions, Slot};
use super::retry::RetryPolicy;
use crate::kafka::{Consumer, PartitionKey};
use crate::record::SourceRecord;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Why the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReadEnd {
    /// A stop was requested.
    Stopped,
    /// `--stop-at-end`: every partition is committed at its end.
    AtEnd,
    /// `--stop-at-end` waited too long for these partitions.
    GaveUp(Vec<String>),
}

/// The consuming loop and what it owns.
pub(super) struct KafkaReader {
    pub consumer: Arc<Consumer>,
    pub partitions: Partitions,
    pub spawner: Spawner,
    pub events: mpsc::UnboundedReceiver<TaskEvent>,
    pub limits: Limits,
    /// Backoff between restarts of a failing partition task.
    pub restart: RetryPolicy,
    /// Counts what is consumed, per partition, for /metrics.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

impl KafkaReader {
    /// Reads until `shutdown` resolves or, with `end`, the topics are consumed.
    pub async fn run(&mut self, mut end: Option<EndOfTopics>, shutdown: impl Future<Output = ()>) -> ReadEnd {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    tracing::info!("Stop requested; finishing in-flight batches.");
                    return ReadEnd::Stopped;
                }
                Some(event) = self.events.recv() => self.on_task_event(event),
                _ = tick.tick() => {
                    self.resume_drained();
                    if let Some(end) = end.as_mut() {
                        match end.check(&self.consumer) {
                            EndCheck::Done => {
                                tracing::info!("Every partition of the input topics is committed at its end.");
                                return ReadEnd::AtEnd;
                            }
                            EndCheck::GaveUp(short) => return ReadEnd::GaveUp(short),
                            EndCheck::Waiting => {}
                        }
                    }
                }
                next = self.consumer.next() => match next {
                    Ok(record) => self.route(record),
                    Err(e) => {
                        tracing::warn!(error = %e, "Kafka consumer error.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// Moves a record into its partition's buffer; pauses the partition
    /// when the buffer is full. Never waits.
    fn route(&self, record: SourceRecord) {
        let key: PartitionKey = (record.topic.clone(), record.partition);
        let mut slots = self.partitions.lock();
        // A record of a partition given away (fetched before the revocation)
        // must not start a task here: its new owner places it.
        if !slots.contains_key(&key) && !self.consumer.assignment().contains(&key) {
            return;
        }
        let slot = slots.entry(key.clone()).or_insert_with(|| {
            let buffer = Arc::new(PartitionBuffer::default());
            let task = self.spawner.spawn(key.clone(), 0, buffer.clone(), Duration::ZERO);
            Slot {
                state: Lifecycle::Assigned,
                generation: 0,
                buffer,
                task,
                next_expected: None,
                first_offset: None,
                done_up_to: None,
                restarts: 0,
            }
        });
        if matches!(slot.state, Lifecycle::Draining | Lifecycle::Revoked) {
            return;
        }
        // After a seek, records before the seek position may still be in
        // flight; they were placed already or will come again.
        if slot.next_expected.is_some_and(|n| record.offset < n) {
            return;
        }
        slot.next_expected = Some(record.offset + 1);
        slot.first_offset.get_or_insert(record.offset);
        self.telemetry.consumed(&record);
        let held = slot.buffer.push(record);
        if matches!(slot.state, Lifecycle::Assigned | Lifecycle::Restarting) && self.limits.full(held) {
            self.consumer.pause(&key);
            slot.state = Lifecycle::Paused;
            tracing::debug!(topic = %key.0, partition = key.1, records = held.records, bytes = held.bytes, "Partition paused: its buffer is full.");
        }
    }

    fn on_task_event(&self, event: TaskEvent) {
        match event {
            TaskEvent::BatchDone { key, generation, next_offset } => {
                let mut slots = self.partitions.lock();
                let Some(slot) = slots.get_mut(&key).filter(|s| s.generation == generation) else { return };
                slot.done_up_to = Some(next_offset);
                if slot.state == Lifecycle::Restarting {
                    slot.state = Lifecycle::Assigned;
                }
                drop(slots);
                self.resume_drained();
            }
            TaskEvent::Failed { key, generation, panic } => self.restart(key, generation, &panic),
        }
    }

    /// Resumes every paused partition whose buffer has drained to half.
    fn resume_drained(&self) {
        let mut slots = self.partitions.lock();
        for (key, slot) in slots.iter_mut() {
            if slot.state == Lifecycle::Paused && self.limits.drained(slot.buffer.held()) {
                // librdkafka dropped what it prefetched for the paused
                // partition and rewinds to the record after the last one it
                // delivered; the explicit seek to the first record not yet
                // buffered makes that independent of librdkafka's version.
                if let Some(next) = slot.next_expected {
                    self.consumer.seek(key, next);
                }
                self.consumer.resume(key);
                slot.state = Lifecycle::Assigned;
                tracing::debug!(topic = %key.0, partition = key.1, "Partition resumed.");
            }
        }
    }

    /// A partition task failed: its unfinished batch stored nothing, so the
    /// partition is read again from its last stored offset by a new task,
    /// after a backoff that grows with each failure. The other partitions
    /// go on meanwhile.
    fn restart(&self, key: PartitionKey, generation: u64, panic: &str) {
        let mut slots = self.partitions.lock();
        let Some(slot) = slots.get_mut(&key).filter(|s| s.generation == generation) else { return };
        if matches!(slot.state, Lifecycle::Draining | Lifecycle::Revoked) {
            tracing::error!(topic = %key.0, partition = key.1, panic, "Partition task failed while being handed over; its new owner reads it again.");
            return;
        }
        let Some(from) = slot.done_up_to.or(slot.first_offset) else { return };
        slot.restarts += 1;
        let delay = restart_delay(self.restart, slot.restarts);
        tracing::error!(topic = %key.0, partition = key.1, panic, from_offset = from, restarts = slot.restarts, retry_in_ms = delay.as_millis() as u64, "Partition task failed; restarting it from its last stored offset.");
        slot.buffer.close();
        slot.buffer = Arc::new(PartitionBuffer::default());
        slot.generation += 1;
        slot.task = self.spawner.spawn(key.clone(), slot.generation, slot.buffer.clone(), delay);
        slot.next_expected = Some(from);
        // Fetch the failed batch and everything after it again. A seek
        // also discards what librdkafka prefetched from the old position.
        self.consumer.seek(&key, from);
        if slot.state == Lifecycle::Paused {
            self.consumer.resume(&key);
        }
        slot.state = Lifecycle::Restarting;
    }
}

/// The wait before the `restarts`-th restart of a failing partition task:
/// doubling from `initial`, capped at `max`.
fn restart_delay(policy: RetryPolicy, restarts: u32) -> Duration {
    policy.initial.saturating_mul(1 << restarts.min(16)).min(policy.max)
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
