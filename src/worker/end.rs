//! `run --stop-at-end`: the topics are consumed when every partition of the
//! input topics has its group's committed offset at the end it had when the
//! run started, whoever holds it. Partitions held by live members are
//! finished by them; partitions held by crashed members come back through a
//! rebalance once their sessions time out, and this member places them.

use crate::kafka::{Consumer, KafkaError, PartitionKey, Source as _};
use futures::FutureExt as _;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How often the waiting is logged.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Whether the run may end.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum EndCheck {
    Done,
    Waiting,
    /// Waited `stop_at_end_timeout`; these partitions are still short.
    GaveUp(Vec<String>),
}

/// A question to the broker running on the blocking pool.
type Lookup<T> = Option<JoinHandle<Result<T, KafkaError>>>;

/// The ends to reach and the last look at the committed offsets.
pub(super) struct EndOfTopics {
    consumer: Arc<Consumer>,
    topics: Vec<String>,
    /// The end offset each non-empty partition had at start; `None` until
    /// the broker has answered (it may be down when the run starts).
    targets: Option<HashMap<PartitionKey, i64>>,
    started: Instant,
    timeout: Duration,
    /// When the waiting was last logged: at once, then every `LOG_EVERY`.
    last_log: Option<Instant>,
    ends: Lookup<HashMap<PartitionKey, (i64, i64)>>,
    lookup: Lookup<HashMap<PartitionKey, i64>>,
    /// Partitions short of their end at the last look, described.
    short: Vec<String>,
}

impl EndOfTopics {
    /// Starts watching `topics` through `consumer`; gives up after `timeout`.
    pub(super) fn new(consumer: Arc<Consumer>, topics: &[&str], timeout: Duration) -> EndOfTopics {
        EndOfTopics {
            consumer,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            targets: None,
            started: Instant::now(),
            timeout,
            last_log: None,
            ends: None,
            lookup: None,
            short: Vec::new(),
        }
    }

    /// Looks at the committed offsets (in the background; the consumer
    /// keeps being polled meanwhile) and says whether the run may end.
    pub(super) fn check(&mut self) -> EndCheck {
        if self.started.elapsed() > self.timeout {
            return EndCheck::GaveUp(self.short.clone());
        }
        let consumer = self.consumer.clone();
        let Some(targets) = self.targets(&consumer) else { return EndCheck::Waiting };
        if let Some(lookup) = self.lookup.take_if(|l| l.is_finished()) {
            match lookup.now_or_never().and_then(Result::ok) {
                Some(Ok(committed)) => {
                    let mut short: Vec<String> = targets
                        .iter()
                        .filter(|(k, end)| committed.get(*k).is_none_or(|c| c < *end))
                        .map(|(k, end)| {
                            let at = committed.get(k).map_or("none".to_owned(), i64::to_string);
                            let holder = if consumer.assignment().contains(k) {
                                "this member"
                            } else {
                                "another or a crashed member"
                            };
                            format!("{}/{} committed {at} of {end} (held by {holder})", k.0, k.1)
                        })
                        .collect();
                    short.sort();
                    if short.is_empty() {
                        return EndCheck::Done;
                    }
                    self.short = short;
                }
                Some(Err(e)) => tracing::debug!(error = %e, "Reading committed offsets failed; trying again."),
                None => {}
            }
        }
        if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) && !self.short.is_empty() {
            self.last_log = Some(Instant::now());
            tracing::info!(remaining = self.short.len(), waiting_for = ?self.short.iter().take(8).collect::<Vec<_>>(), "Waiting for partitions to be committed at their end.");
        }
        if self.lookup.is_none() {
            let keys: Vec<PartitionKey> = targets.keys().cloned().collect();
            let c = consumer.clone();
            self.lookup = Some(tokio::task::spawn_blocking(move || c.committed(&keys)));
        }
        EndCheck::Waiting
    }

    /// The ends to reach, once the broker has told them.
    fn targets(&mut self, consumer: &Arc<Consumer>) -> Option<HashMap<PartitionKey, i64>> {
        if self.targets.is_none() {
            if let Some(ends) = self.ends.take_if(|l| l.is_finished()) {
                match ends.now_or_never().and_then(Result::ok) {
                    Some(Ok(ends)) => {
                        // A partition whose low mark is its end has nothing to read.
                        let targets: HashMap<PartitionKey, i64> = ends
                            .into_iter()
                            .filter(|(_, (low, high))| high > low)
                            .map(|(k, (_, high))| (k, high))
                            .collect();
                        tracing::info!(
                            partitions = targets.len(),
                            records_at_most = targets.values().sum::<i64>(),
                            "Consuming until every partition is committed at the end it has now."
                        );
                        self.targets = Some(targets);
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "Reading the topics' end offsets failed; trying again."),
                    None => {}
                }
            }
            if self.targets.is_none() && self.ends.is_none() {
                let (c, topics) = (consumer.clone(), self.topics.clone());
                self.ends = Some(tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
                    c.partition_ends(&refs)
                }));
            }
        }
        self.targets.clone()
    }
}
