//! The consuming loop. It never waits on a partition: it takes what the
//! consumer delivers (records and rebalances, in order), news from the
//! partition tasks and its own clock, and turns each into a partition
//! [`Event`]. It is the only writer of the partitions' states.

use super::end::{EndCheck, EndOfTopics};
use super::lifecycle::{Event, Hands};
use super::partitions::{wait_for_exit, Partitions};
use crate::kafka::{PartitionKey, Polled, Revoking, Source};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Why the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReadEnd {
    /// A stop was requested, or the consumer closed.
    Stopped,
    /// `--stop-at-end`: every partition is committed at its end.
    AtEnd,
    /// `--stop-at-end` waited too long for these partitions.
    GaveUp(Vec<String>),
}

/// What reaches the loop from the tasks it started.
#[derive(Debug)]
pub(super) enum Note {
    /// News from a partition's task.
    Task(PartitionKey, Event),
    /// The revoked partitions' tasks have ended, or `late` are still
    /// running at `drain_timeout` ([`super::handover`]).
    Drained { revoking: Revoking, late: Vec<PartitionKey> },
}

/// The consuming loop and what it owns.
pub(super) struct Reader {
    /// Where records and rebalances come from.
    pub source: Arc<dyn Source>,
    /// The partitions; this loop is their only writer.
    pub partitions: Partitions,
    /// What the partitions' transitions act on.
    pub hands: Hands,
    /// News from partition tasks and handover waiters.
    pub notes: mpsc::UnboundedReceiver<Note>,
    /// For the handover's waiters; the partition tasks hold clones too.
    pub notes_tx: mpsc::UnboundedSender<Note>,
    /// How long a revoked partition's batch may take to finish.
    pub drain_timeout: Duration,
}

impl Reader {
    /// Reads until `shutdown` resolves, the consumer closes or, with `end`,
    /// the topics are consumed.
    pub(super) async fn run(&mut self, mut end: Option<EndOfTopics>, shutdown: impl Future<Output = ()>) -> ReadEnd {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    tracing::info!("Stop requested; finishing in-flight batches.");
                    return ReadEnd::Stopped;
                }
                Some(note) = self.notes.recv() => self.on_note(note),
                _ = tick.tick() => {
                    self.partitions.on_all(|| Event::Tick, &self.hands);
                    if let Some(end) = end.as_mut() {
                        match end.check() {
                            EndCheck::Done => {
                                tracing::info!("Every partition of the input topics is committed at its end.");
                                return ReadEnd::AtEnd;
                            }
                            EndCheck::GaveUp(short) => return ReadEnd::GaveUp(short),
                            EndCheck::Waiting => {}
                        }
                    }
                }
                polled = self.source.poll() => match polled {
                    Some(polled) => self.on_polled(polled),
                    None => return ReadEnd::Stopped,
                },
            }
        }
    }

    fn on_polled(&self, polled: Polled) {
        match polled {
            Polled::Record(record) => {
                let key = (record.topic.clone(), record.partition);
                self.partitions.on(&key, Event::Record(record), &self.hands);
            }
            Polled::Assigned(keys) => {
                // A partition's task starts with its first record.
                tracing::debug!(partitions = ?keys, "Partitions will start with their first record.");
                self.partitions.assign(&keys);
            }
            Polled::Revoking(revoking) => self.revoking(revoking),
            Polled::Lost(keys) => self.lost(&keys),
            Polled::Seeked(key) => self.partitions.on(&key, Event::Seeked, &self.hands),
            // What the consumer waits for shows in /readyz like a
            // partition's wait.
            Polled::Trouble(cause) => self.hands.telemetry.stats.waiting("the Kafka consumer", cause),
        }
    }

    fn on_note(&self, note: Note) {
        match note {
            Note::Task(key, event) => self.partitions.on(&key, event, &self.hands),
            Note::Drained { revoking, late } => self.drained(revoking, &late),
        }
    }

    /// Stops every partition: queued records are dropped (they are read
    /// again by whoever consumes next); the batches being placed finish
    /// within `timeout`, except that one waiting out a transient failure
    /// gives up at once. Returns the partitions abandoned at the deadline.
    /// Consumes the loop, so a revocation still waiting for its answer is
    /// released once everything has stopped.
    pub(super) async fn finish(self, timeout: Duration) -> Vec<PartitionKey> {
        self.partitions.on_all(|| Event::Stop, &self.hands);
        let late = wait_for_exit(self.partitions.running(None), timeout).await;
        if !late.is_empty() {
            tracing::error!(partitions = ?late, timeout_ms = timeout.as_millis() as u64, "In-flight batches did not finish in time; abandoning them uncommitted.");
            for key in &late {
                self.partitions.on(key, Event::Abandon, &self.hands);
            }
        }
        late
    }
}
