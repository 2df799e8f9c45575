//! The consumer's polling thread and its rebalance callbacks. librdkafka
//! runs the callbacks on the thread that polls; here that is a dedicated
//! std thread, never a runtime thread, so the revoke callback may block it
//! while the worker drains the revoked partitions on the runtime.

use super::consumer::{owned, PartitionKey};
use super::source::{Polled, Revoking};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Records waiting between the polling thread and the worker: few, so
/// that what librdkafka prefetches stays the only unbounded-by-the-worker
/// memory (records can be 10 MiB each).
pub(super) const HANDOFF_RECORDS: usize = 4;

/// Tracks the current assignment and hands rebalances to the worker.
pub(super) struct Context {
    assignment: Mutex<BTreeSet<PartitionKey>>,
    /// Where records and rebalances go, in order (see [`Consumer::poll`]).
    polled: mpsc::Sender<Polled>,
}

impl Context {
    pub(super) fn new(polled: mpsc::Sender<Polled>) -> Context {
        Context { assignment: Mutex::default(), polled }
    }

    /// The partitions assigned to this member, as the last rebalance left them.
    pub(super) fn assignment(&self) -> BTreeSet<PartitionKey> {
        self.assignment.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl ClientContext for Context {}

fn keys(tpl: &TopicPartitionList) -> Vec<PartitionKey> {
    tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect()
}

impl ConsumerContext for Context {
    /// Runs on the polling thread, never a runtime thread, so it may block
    /// while the worker drains the revoked partitions on the runtime.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else { return };
        if consumer.assignment_lost() {
            // Already someone else's: nothing to wait for, nothing to commit.
            let _ = self.polled.blocking_send(Polled::Lost(keys(tpl)));
            return;
        }
        let (revoking, answered) = Revoking::new(keys(tpl));
        // An error means the worker has stopped reading: it has already
        // drained everything it had.
        if self.polled.blocking_send(Polled::Revoking(revoking)).is_ok() {
            let _ = answered.recv();
        }
        // Commit what the drained partitions stored, so the new owner
        // starts exactly after the work finished here.
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(error = %e, "Commit before giving partitions away failed."),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Under the cooperative protocol the callback sees only the change;
        // reading the whole assignment back works for both protocols.
        let current: BTreeSet<PartitionKey> =
            consumer.assignment().map(|tpl| keys(&tpl).into_iter().collect()).unwrap_or_default();
        if let Ok(mut assignment) = self.assignment.lock() {
            assignment.clone_from(&current);
        }
        match rebalance {
            Rebalance::Assign(tpl) => {
                // A partition paused when it was last ours must flow again.
                let _ = consumer.resume(tpl);
                tracing::info!(added = tpl.count(), total = current.len(), "Partitions assigned.");
                let _ = self.polled.blocking_send(Polled::Assigned(keys(tpl)));
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(removed = tpl.count(), total = current.len(), "Partitions revoked.")
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "Rebalance failed."),
        }
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // NoOffset just means nothing new was stored since the last commit.
            if !matches!(e, KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) {
                tracing::warn!(error = %e, "Offset commit failed; it is retried with the next one.");
            }
        }
    }
}

/// How long one poll waits for a record: also how long a seek may wait
/// for the polling thread to make it.
const POLL_WAIT: Duration = Duration::from_millis(10);

/// Polls `inner` until `running` turns false, sending what it delivers to
/// `polled`. Rebalance callbacks run inside `poll`, on this thread.
///
/// Seeks are made here too, between two polls, each followed by a
/// [`Polled::Seeked`]: records already handed over but not yet taken by the
/// worker were fetched from the old position, and the marker lets the
/// worker tell them from those fetched after the seek (librdkafka itself
/// drops the stale records it still holds).
pub(super) fn poll_loop(
    inner: Arc<BaseConsumer<Context>>,
    polled: mpsc::Sender<Polled>,
    seeks: std::sync::mpsc::Receiver<(PartitionKey, i64)>,
    running: Arc<AtomicBool>,
) {
    while running.load(Ordering::Relaxed) {
        for (key, offset) in seeks.try_iter() {
            if let Err(e) = inner.seek(&key.0, key.1, Offset::Offset(offset), Duration::ZERO) {
                tracing::warn!(topic = %key.0, partition = key.1, offset, error = %e, "Seek failed.");
            }
            let _ = polled.blocking_send(Polled::Seeked(key));
        }
        match inner.poll(POLL_WAIT) {
            Some(Ok(message)) => {
                let record = owned(&message);
                drop(message);
                // Refused once the worker has stopped reading: the record
                // is not processed and its offset never stored.
                let _ = polled.blocking_send(Polled::Record(record));
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Kafka consumer error.");
                std::thread::sleep(Duration::from_millis(100));
            }
            None => {}
        }
    }
}
