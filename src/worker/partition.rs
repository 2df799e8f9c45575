//! One task per partition: it takes batches from the partition's buffer,
//! runs each through the batch [`Step`] (the [`Pipeline`] in production),
//! stores the batch's last offset, and reports back to the consuming loop.
//! Partitions run in parallel; within one, records are applied strictly in
//! offset order. The task never talks to the consumer except to store an
//! offset, so a stuck partition holds only its own buffer.
//!
//! A task is stopped one way: [`Task::stop`] with a [`Stop`] level, over one
//! watch channel. The task checks it between batches, while it waits out a
//! restart's backoff, and while a batch is being placed.

use super::batch::Pipeline;
use super::buffer::{Limits, PartitionBuffer, Taken};
use super::lifecycle::Event;
use super::reader::Note;
use super::retry::Interrupted;
use crate::failure;
use crate::kafka::{PartitionKey, Source};
use crate::record::SourceRecord;
use crate::telemetry::Telemetry;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// One batch step: when it returns `Ok`, every record of the batch is
/// durably placed or dead-lettered and its offset may be stored; `Ok`
/// carries how long the batch waited for a shared transaction's lane, if
/// it was shared.
/// `Err(Interrupted)` only when `stop` turned true while it waited out a
/// transient failure; then nothing of the batch may be stored.
pub(super) trait Step: Send + Sync + 'static {
    fn place<'a>(
        &'a self,
        records: &'a [SourceRecord],
        bytes: usize,
        stop: &'a watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<Option<Duration>, Interrupted>>;

    /// Dead-letters `record` as `panicked`: the partition's task panicked
    /// on it every time, outside the places the pipeline catches a panic.
    fn quarantine<'a>(
        &'a self,
        record: &'a SourceRecord,
        panic: &'a str,
        stop: &'a watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<(), Interrupted>>;
}

impl Step for Pipeline {
    fn place<'a>(
        &'a self,
        records: &'a [SourceRecord],
        bytes: usize,
        stop: &'a watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<Option<Duration>, Interrupted>> {
        Box::pin(self.process(records, bytes, stop))
    }

    fn quarantine<'a>(
        &'a self,
        record: &'a SourceRecord,
        panic: &'a str,
        stop: &'a watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<(), Interrupted>> {
        Box::pin(self.dead_letter_panicked(record, panic, stop))
    }
}

/// How far a stop goes; each level includes the ones before it, and a stop
/// is never lowered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stop {
    /// Keep placing.
    Run,
    /// Take no new batch; the batch in hand finishes, however long it waits.
    Finish,
    /// As `Finish`, but a batch waiting out a transient failure gives up at
    /// once (it would not finish anyway): used on shutdown.
    Interrupt,
    /// Drop the batch in hand now, unfinished and unstored: a deadline
    /// passed, or the partition is already someone else's.
    Abandon,
}

/// A running partition task, as its partition controls it. Dropping it
/// abandons the task.
pub(super) struct Task {
    stop: watch::Sender<Stop>,
    /// Becomes `true` (or closed) when the task has ended.
    exited: watch::Receiver<bool>,
}

impl Task {
    /// The one way to stop a task: raises its stop level to `level`.
    pub(super) fn stop(&self, level: Stop) {
        self.stop.send_if_modified(|current| {
            let raise = level > *current;
            if raise {
                *current = level;
            }
            raise
        });
    }

    /// What to wait on for the task's end; `None` when it has ended.
    pub(super) fn running(&self) -> Option<watch::Receiver<bool>> {
        let ended = *self.exited.borrow() || self.exited.has_changed().is_err();
        (!ended).then(|| self.exited.clone())
    }
}

/// For tests only: makes the task holding one given record panic, once
/// (`topic/partition/offset`) or every time (`always:topic/partition/offset`).
pub(super) struct PanicHook {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub fired: AtomicBool,
    pub always: bool,
}

impl PanicHook {
    /// Parses the setting; `None` when empty or malformed.
    pub(super) fn parse(text: &str) -> Option<PanicHook> {
        let (always, text) = match text.strip_prefix("always:") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (topic, partition, offset) = super::test_hooks::record_at(text)?;
        Some(PanicHook { topic, partition, offset, fired: AtomicBool::new(false), always })
    }

    fn check(&self, batch: &[SourceRecord]) {
        let hit =
            batch.iter().any(|r| r.topic == self.topic && r.partition == self.partition && r.offset == self.offset);
        if hit && (self.always || !self.fired.swap(true, Ordering::SeqCst)) {
            panic!("injected test panic at {}/{}/{}", self.topic, self.partition, self.offset);
        }
    }
}

/// What every partition task shares; starts tasks.
pub(super) struct Spawner {
    /// Places a batch (the [`Pipeline`] in production).
    pub step: Arc<dyn Step>,
    /// Where a finished batch's offset is stored.
    pub source: Arc<dyn Source>,
    /// How large a batch may be.
    pub limits: Limits,
    /// Where tasks report to the consuming loop.
    pub notes: mpsc::UnboundedSender<Note>,
    /// For tests only (`worker.test_panic_at`).
    pub panic_hook: Option<Arc<PanicHook>>,
    /// Counts batches for /metrics; marks a task dead if it unwinds.
    pub telemetry: Arc<Telemetry>,
}

impl Spawner {
    /// Starts a task for `key` that waits `delay` before its first batch.
    /// With `quarantine`, it places its first batch one record at a time
    /// and dead-letters a record whose placing panics (the partition's task
    /// panicked on that batch every time before).
    pub(super) fn spawn(
        &self,
        key: PartitionKey,
        generation: u64,
        buffer: Arc<PartitionBuffer>,
        delay: Duration,
        quarantine: bool,
    ) -> Task {
        let (stop_tx, stop_rx) = watch::channel(Stop::Run);
        let (exited_tx, exited_rx) = watch::channel(false);
        let task = PartitionTask {
            key: key.clone(),
            generation,
            buffer,
            step: self.step.clone(),
            source: self.source.clone(),
            limits: self.limits,
            notes: self.notes.clone(),
            stop: stop_rx,
            panic_hook: self.panic_hook.clone(),
            telemetry: self.telemetry.clone(),
            quarantine,
        };
        let notes = self.notes.clone();
        tokio::spawn(async move {
            // A panic in a decoder or the store must not vanish with the
            // task: catch it and tell the loop, which restarts the partition.
            if let Err(panic) = AssertUnwindSafe(task.run(delay)).catch_unwind().await {
                let panic = failure::panic_message(panic.as_ref());
                let _ = notes.send(Note::Task(key, Event::TaskFailed { generation, panic }));
            }
            let _ = exited_tx.send(true);
        });
        Task { stop: stop_tx, exited: exited_rx }
    }
}

/// The task of one partition.
struct PartitionTask {
    key: PartitionKey,
    generation: u64,
    buffer: Arc<PartitionBuffer>,
    step: Arc<dyn Step>,
    source: Arc<dyn Source>,
    limits: Limits,
    notes: mpsc::UnboundedSender<Note>,
    stop: watch::Receiver<Stop>,
    panic_hook: Option<Arc<PanicHook>>,
    telemetry: Arc<Telemetry>,
    /// Place the first batch record by record, quarantining what panics.
    quarantine: bool,
}

/// How placing one batch ended.
enum Placed {
    /// Durable; how long it waited for a shared transaction's lane, if it
    /// was shared.
    Done(Option<Duration>),
    /// Interrupted or abandoned: nothing of it is stored.
    Unfinished,
}

impl PartitionTask {
    /// Runs until stopped; the batch in hand is finished first unless the
    /// stop abandons it.
    async fn run(mut self, delay: Duration) {
        // Marks the partition's task dead for /healthz if it unwinds.
        let _alive = self.telemetry.partition_task(&self.key);
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.wait_for(|s| *s >= Stop::Finish) => return,
            }
        }
        loop {
            let Taken { records: batch, bytes, received } = tokio::select! {
                biased;
                // An error means the handle was dropped: abandoned.
                _ = self.stop.wait_for(|s| *s >= Stop::Finish) => return,
                taken = self.buffer.next_batch(&self.limits) => taken,
            };
            let started = std::time::Instant::now();
            let placed = if std::mem::take(&mut self.quarantine) {
                self.place_one_by_one(&batch).await
            } else {
                if let Some(hook) = &self.panic_hook {
                    hook.check(&batch);
                }
                self.place(&batch, bytes).await
            };
            let Placed::Done(lane_wait) = placed else {
                self.telemetry.batch_abandoned(&self.key, &batch);
                tracing::info!(topic = %self.key.0, partition = self.key.1, "Partition stopped with a batch unfinished; it will be redelivered.");
                return;
            };
            self.telemetry.batch_done(&self.key, &batch, &received, started, lane_wait);
            tracing::debug!(topic = %self.key.0, partition = self.key.1, records = batch.len(), bytes, elapsed_ms = started.elapsed().as_millis() as u64, "Batch done.");
            if let Some(last) = batch.last() {
                self.source.store_offset(&self.key, last.offset);
                let next_offset = last.offset + 1;
                // Free the records before telling the loop, which may then
                // fetch more for this partition.
                drop(batch);
                self.buffer.finished();
                let done = Event::BatchDone { generation: self.generation, next_offset };
                let _ = self.notes.send(Note::Task(self.key.clone(), done));
            }
        }
    }

    /// Places `batch` one record at a time; a record whose placing panics is
    /// dead-lettered (`panicked`) and the others placed. The panic repeated
    /// on every restart, so it would otherwise hold the partition forever.
    async fn place_one_by_one(&mut self, batch: &[SourceRecord]) -> Placed {
        for record in batch {
            let one = std::slice::from_ref(record);
            let bytes = super::buffer::record_bytes(record);
            let attempt = async {
                if let Some(hook) = &self.panic_hook {
                    hook.check(one);
                }
                self.place(one, bytes).await
            };
            let panic = match AssertUnwindSafe(attempt).catch_unwind().await {
                Ok(Placed::Done(_)) => continue,
                Ok(Placed::Unfinished) => return Placed::Unfinished,
                Err(panic) => failure::panic_message(panic.as_ref()),
            };
            tracing::error!(topic = %self.key.0, partition = self.key.1, offset = record.offset, panic, "The partition's task panicked on this record every time; dead-lettering it.");
            let (_, interrupted) = watch::channel(*self.stop.borrow() >= Stop::Interrupt);
            if self.step.quarantine(record, &panic, &interrupted).await.is_err() {
                return Placed::Unfinished;
            }
        }
        Placed::Done(None)
    }

    /// Places one batch, passing an `Interrupt` on to the step and dropping
    /// the step at `Abandon` (which cancels its transaction).
    async fn place(&mut self, batch: &[SourceRecord], bytes: usize) -> Placed {
        let (interrupt, interrupted) = watch::channel(*self.stop.borrow() >= Stop::Interrupt);
        let step = self.step.place(batch, bytes, &interrupted);
        tokio::pin!(step);
        loop {
            tokio::select! {
                placed = &mut step => return placed.map_or(Placed::Unfinished, Placed::Done),
                changed = self.stop.changed() => {
                    let level = if changed.is_ok() { *self.stop.borrow_and_update() } else { Stop::Abandon };
                    if level >= Stop::Abandon {
                        return Placed::Unfinished;
                    }
                    if level >= Stop::Interrupt {
                        let _ = interrupt.send(true);
                    }
                }
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
        assert!(!PanicHook::parse("t.sms/2/17").unwrap().always);
        assert!(PanicHook::parse("always:t.sms/2/17").unwrap().always);
    }
}
