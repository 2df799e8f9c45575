//! One task per assigned partition: it takes batches from the partition's
//! buffer, runs each through the [`Pipeline`], marks the batch's last offset
//! done, and reports back to the consuming loop. Partitions run in parallel;
//! within one, records are applied strictly in offset order. The task never
//! talks to the consumer except to store an offset, so a stuck partition
//! holds only its own buffer.

use super::batch::Pipeline;
use super::buffer::{Limits, PartitionBuffer, Taken};
use super::partitions::TaskHandles;
use crate::kafka::{Consumer, PartitionKey};
use crate::record::SourceRecord;
use crate::telemetry::Telemetry;
use futures::FutureExt as _;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What a partition task tells the consuming loop.
#[derive(Debug)]
pub(super) enum TaskEvent {
    /// A batch is placed; everything before `next_offset` is done.
    BatchDone { key: PartitionKey, generation: u64, next_offset: i64 },
    /// The task panicked; its batch is unfinished and nothing of it stored.
    Failed { key: PartitionKey, generation: u64, panic: String },
}

/// For tests only: makes the task holding one given record panic, once.
pub(super) struct PanicHook {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub fired: AtomicBool,
}

impl PanicHook {
    /// Parses `topic/partition/offset`; `None` when empty or malformed.
    pub fn parse(text: &str) -> Option<PanicHook> {
        let (rest, offset) = text.rsplit_once('/')?;
        let (topic, partition) = rest.rsplit_once('/')?;
        Some(PanicHook {
            topic: topic.to_owned(),
            partition: partition.parse().ok()?,
            offset: offset.parse().ok()?,
            fired: AtomicBool::new(false),
        })
    }

    fn check(&self, batch: &[SourceRecord]) {
        let hit =
            batch.iter().any(|r| r.topic == self.topic && r.partition == self.partition && r.offset == self.offset);
        if hit && !self.fired.swap(true, Ordering::SeqCst) {
            panic!("injected test panic at {}/{}/{}", self.topic, self.partition, self.offset);
        }
    }
}

/// What every partition task shares; starts tasks.
pub(super) struct Spawner {
    pub pipeline: Arc<Pipeline>,
    pub consumer: Arc<Consumer>,
    pub limits: Limits,
    pub events: mpsc::UnboundedSender<TaskEvent>,
    pub panic_hook: Option<Arc<PanicHook>>,
    pub telemetry: Arc<Telemetry>,
}

impl Spawner {
    /// Starts a task for `key` that waits `delay` before its first batch.
    pub fn spawn(
        &self,
        key: PartitionKey,
        generation: u64,
        buffer: Arc<PartitionBuffer>,
        delay: Duration,
    ) -> TaskHandles {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (exited_tx, exited_rx) = watch::channel(false);
        let task = PartitionTask {
            key: key.clone(),
            generation,
            buffer,
            pipeline: self.pipeline.clone(),
            consumer: self.consumer.clone(),
            limits: self.limits,
            events: self.events.clone(),
            stop: stop_rx,
            panic_hook: self.panic_hook.clone(),
            telemetry: self.telemetry.clone(),
        };
        let events = self.events.clone();
        let handle = tokio::spawn(async move {
            // A panic in a decoder or the store must not vanish with the
            // task: catch it and tell the loop, which restarts the partition.
            if let Err(panic) = AssertUnwindSafe(task.run(delay)).catch_unwind().await {
                let panic = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                let _ = events.send(TaskEvent::Failed { key, generation, panic });
            }
            let _ = exited_tx.send(true);
        });
        TaskHandles { stop: stop_tx, exited: exited_rx, abort: handle.abort_handle() }
    }
}

/// The task of one partition.
struct PartitionTask {
    key: PartitionKey,
    generation: u64,
    buffer: Arc<PartitionBuffer>,
    pipeline: Arc<Pipeline>,
    consumer: Arc<Consumer>,
    limits: Limits,
    events: mpsc::UnboundedSender<TaskEvent>,
    stop: watch::Receiver<bool>,
    panic_hook: Option<Arc<PanicHook>>,
    telemetry: Arc<Telemetry>,
}

impl PartitionTask {
    /// Runs until the buffer closes (revocation, shutdown) or a stop request
    /// interrupts a wait; the batch in hand is finished first.
    async fn run(mut self, delay: Duration) {
        // Marks the partition's task dead for /healthz if it unwinds.
        let _alive = self.telemetry.partition_task(&self.key);
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.wait_for(|s| *s) => return,
            }
        }
        while let Some(Taken { records: batch, bytes, received }) = self.buffer.next_batch(&self.limits).await {
            if let Some(hook) = &self.panic_hook {
                hook.check(&batch);
            }
            let started = std::time::Instant::now();
            if self.pipeline.process(&batch, bytes, &self.stop).await.is_err() {
                self.telemetry.batch_abandoned(&self.key, &batch);
                tracing::info!(topic = %self.key.0, partition = self.key.1, "Partition stopped with a batch unfinished; it will be redelivered.");
                return;
            }
            self.telemetry.batch_done(&self.key, &batch, &received, started.elapsed());
            tracing::debug!(topic = %self.key.0, partition = self.key.1, records = batch.len(), bytes, elapsed_ms = started.elapsed().as_millis() as u64, "Batch done.");
            if let Some(last) = batch.last() {
                self.consumer.mark_done(&last.topic, last.partition, last.offset);
                let next_offset = last.offset + 1;
                // Free the records before telling the loop, which may then
                // fetch more for this partition.
                drop(batch);
                self.buffer.finished();
                let _ = self.events.send(TaskEvent::BatchDone {
                    key: self.key.clone(),
                    generation: self.generation,
                    next_offset,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_hook_reads_topic_partition_offset() {
        let hook = PanicHook::parse("t.sms/2/17").unwrap();
        assert_eq!((hook.topic.as_str(), hook.partition, hook.offset), ("t.sms", 2, 17));
        assert!(PanicHook::parse("").is_none());
        assert!(PanicHook::parse("t.sms/x/1").is_none());
    }
}
