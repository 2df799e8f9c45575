//! The consumer's polling thread and its rebalance callbacks. librdkafka
//! runs the callbacks on the thread that polls; here that is a dedicated
//! std thread, never a runtime thread, so the revoke callback may block it
//! while the worker drains the revoked partitions on the runtime.

use super::consumer::{owned, PartitionKey};
use super::source::{Polled, Revoking};
use crate::failure::{Infra, PublishVerdict, Verdict};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Hand-offs waiting for the worker. Records go over in hand-offs of up
/// to `HANDOFF_RECORDS` records or `HANDOFF_BYTES` (or one larger record),
/// so that crossing threads costs one wake-up per hand-off, not per record,
/// while what waits here stays small next to the byte caps.
pub(super) const HANDOFFS: usize = 2;
const HANDOFF_RECORDS: usize = 64;
const HANDOFF_BYTES: usize = 1 << 20;

/// What the polling thread has gathered and not yet handed over, in order.
#[derive(Default)]
struct Pending {
    polled: Vec<Polled>,
    bytes: usize,
}

/// Tracks the current assignment and hands records and rebalances to the
/// worker, in the order they happen.
pub(super) struct Context {
    assignment: Mutex<BTreeSet<PartitionKey>>,
    /// Used by the polling thread only (callbacks run on it too).
    pending: Mutex<Pending>,
    /// Where hand-offs go (see `Consumer::poll`).
    handoffs: mpsc::Sender<Vec<Polled>>,
}

impl Context {
    pub(super) fn new(handoffs: mpsc::Sender<Vec<Polled>>) -> Context {
        Context { assignment: Mutex::default(), pending: Mutex::default(), handoffs }
    }

    /// The partitions assigned to this member, as the last rebalance left them.
    pub(super) fn assignment(&self) -> BTreeSet<PartitionKey> {
        self.assignment.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Adds to the next hand-off; `true` when it is full.
    fn push(&self, polled: Polled, bytes: usize) -> bool {
        let Ok(mut pending) = self.pending.lock() else { return true };
        pending.polled.push(polled);
        pending.bytes += bytes;
        pending.polled.len() >= HANDOFF_RECORDS || pending.bytes >= HANDOFF_BYTES
    }

    /// Hands over what is pending, waiting while the worker is two
    /// hand-offs behind. Once the worker has stopped reading, what is
    /// pending is dropped (records unprocessed, offsets never stored).
    fn flush(&self) {
        let polled = match self.pending.lock() {
            Ok(mut pending) => {
                pending.bytes = 0;
                std::mem::take(&mut pending.polled)
            }
            Err(_) => return,
        };
        if !polled.is_empty() {
            let _ = self.handoffs.blocking_send(polled);
        }
    }

    fn has_pending(&self) -> bool {
        self.pending.lock().is_ok_and(|p| !p.polled.is_empty())
    }
}

impl ClientContext for Context {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        super::quiet::log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        super::quiet::error(&error, reason);
    }
}

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
            self.push(Polled::Lost(keys(tpl)), 0);
            self.flush();
            return;
        }
        let (revoking, answered) = Revoking::new(keys(tpl));
        self.push(Polled::Revoking(revoking), 0);
        self.flush();
        // Returns at once if the worker has stopped reading (the revocation
        // was dropped): it has already drained everything it had.
        let _ = answered.recv();
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
                self.push(Polled::Assigned(keys(tpl)), 0);
                self.flush();
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

/// Polls `inner` until `running` turns false, handing what it delivers to
/// the worker. Rebalance callbacks run inside `poll`, on this thread.
///
/// Seeks are made here too, between two polls, each followed by a
/// [`Polled::Seeked`]: records already handed over but not yet taken by the
/// worker were fetched from the old position, and the marker lets the
/// worker tell them from those fetched after the seek (librdkafka itself
/// drops the stale records it still holds).
pub(super) fn poll_loop(
    inner: Arc<BaseConsumer<Context>>,
    seeks: std::sync::mpsc::Receiver<(PartitionKey, i64)>,
    running: Arc<AtomicBool>,
) {
    let context = inner.context().clone();
    let mut trouble = Trouble::default();
    while running.load(Ordering::Relaxed) {
        for (key, offset) in seeks.try_iter() {
            if let Err(e) = inner.seek(&key.0, key.1, Offset::Offset(offset), Duration::ZERO) {
                tracing::warn!(topic = %key.0, partition = key.1, offset, error = %e, "Seek failed.");
            }
            context.push(Polled::Seeked(key), 0);
        }
        // While something is pending, only take what librdkafka already
        // holds, and hand over as soon as it holds nothing more.
        let wait = if context.has_pending() { Duration::ZERO } else { POLL_WAIT };
        match inner.poll(wait) {
            Some(Ok(message)) => {
                if trouble.cleared() {
                    context.push(Polled::Trouble(None), 0);
                }
                let record = owned(&message);
                drop(message);
                let bytes = record.value_len();
                if context.push(Polled::Record(record), bytes) {
                    context.flush();
                }
            }
            Some(Err(e)) => {
                if let Some(cause) = trouble.failed(&e) {
                    context.push(Polled::Trouble(Some(cause)), 0);
                }
                context.flush();
                std::thread::sleep(Duration::from_millis(100));
            }
            None => context.flush(),
        }
    }
}

/// How often the same consumer error is logged again while it lasts.
const TROUBLE_LOG_EVERY: Duration = Duration::from_secs(60);

/// The consumer's errors as the failure policy sees them, logged once per
/// new error and then at most every [`TROUBLE_LOG_EVERY`]: librdkafka
/// reports a refused password or an unreachable broker on every attempt,
/// several a second, and the first line names the cause.
#[derive(Default)]
struct Trouble {
    cause: Option<Infra>,
    last_logged: Option<(String, std::time::Instant)>,
}

impl Trouble {
    /// An error: logs it when new or due, and returns the infrastructure
    /// cause when it changed (to report).
    fn failed(&mut self, e: &KafkaError) -> Option<Infra> {
        let cause = match crate::of_kafka(e) {
            PublishVerdict::Is(Verdict::Wait(cause)) => Some(cause),
            _ => None,
        };
        let text = e.to_string();
        let due = self.last_logged.as_ref().is_none_or(|(last, at)| *last != text || at.elapsed() >= TROUBLE_LOG_EVERY);
        if due {
            let what = cause.map_or("not classed as the infrastructure's", Infra::sentence);
            tracing::warn!(error = %text, cause = cause.map_or("other", Infra::label), "Kafka consumer error: {what}. Repeats of it are logged at most once a minute.");
            self.last_logged = Some((text, std::time::Instant::now()));
        } else {
            tracing::debug!(error = %text, "Kafka consumer error.");
        }
        let changed = cause.is_some() && cause != self.cause;
        if cause.is_some() {
            self.cause = cause;
        }
        changed.then_some(cause).flatten()
    }

    /// A record arrived: whether a reported cause is now over.
    fn cleared(&mut self) -> bool {
        self.last_logged = None;
        self.cause.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn a_consumer_error_is_reported_once_per_cause_and_cleared_by_the_next_record() {
        let mut trouble = Trouble::default();
        let down = KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown);
        let denied = KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed);
        assert_eq!(trouble.failed(&down), Some(Infra::Unreachable));
        assert_eq!(trouble.failed(&down), None, "the same cause is reported once");
        assert_eq!(trouble.failed(&denied), Some(Infra::Refused), "a new cause is");
        assert!(trouble.cleared(), "a record after it ends the wait");
        assert!(!trouble.cleared(), "once");
        let odd = KafkaError::MessageConsumption(RDKafkaErrorCode::Fail);
        assert_eq!(trouble.failed(&odd), None, "not the infrastructure's: logged, not a wait");
        assert!(!trouble.cleared());
    }
}
