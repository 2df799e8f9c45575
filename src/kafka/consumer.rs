//! The group consumer. Offsets are committed by librdkafka's auto-commit,
//! but only offsets the worker explicitly stored after a batch was durably
//! applied or dead-lettered (`enable.auto.offset.store=false`), so a crash
//! replays at most the unfinished batches, which R0 then absorbs.
//!
//! Flow control is per partition: the worker pauses a partition whose buffer
//! is full and resumes it when it drains, while it keeps polling this
//! consumer for the others. librdkafka discards the records it prefetched for
//! a paused partition and, on pause, rewinds the partition's fetch position
//! to the record after the last one handed to the application (librdkafka
//! 2.x, `rd_kafka_toppar_op_pause_resume`); the worker also seeks to the first
//! record it has not buffered before resuming, so nothing is skipped.

use super::client_config;
use crate::config::KafkaSettings;
use crate::record::{Header, SourceRecord};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A (topic, partition).
pub type PartitionKey = (String, i32);

/// What the worker does when the group moves partitions. Both methods run on
/// the thread that polls the consumer, inside librdkafka's rebalance
/// callback: the rebalance completes only when they return.
pub trait RebalanceListener: Send + Sync {
    /// `partitions` were added to this member's assignment.
    fn assigned(&self, partitions: &[PartitionKey]);
    /// `partitions` are about to be given away: return once their in-flight
    /// work is finished (its offsets stored) or abandoned. The stored offsets
    /// are committed right after, before the new owner can fetch.
    fn revoking(&self, partitions: &[PartitionKey]);
}

/// Tracks the current assignment and forwards rebalances to the listener.
struct Context {
    assignment: Mutex<BTreeSet<PartitionKey>>,
    listener: Arc<dyn RebalanceListener>,
}

impl ClientContext for Context {}

fn keys(tpl: &TopicPartitionList) -> Vec<PartitionKey> {
    tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect()
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked = keys(tpl);
            self.listener.revoking(&revoked);
            // Commit what the drained partitions stored, so the new owner
            // starts exactly after the work finished here.
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => tracing::warn!(error = %e, "Commit before giving partitions away failed."),
            }
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
                self.listener.assigned(&keys(tpl));
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

/// The worker's consumer of the three input topics, in one group.
pub struct Consumer {
    inner: StreamConsumer<Context>,
}

impl Consumer {
    /// Creates the consumer and subscribes to `topics`; rebalances are
    /// reported to `listener`.
    pub fn subscribe(
        settings: &KafkaSettings,
        topics: &[&str],
        listener: Arc<dyn RebalanceListener>,
    ) -> anyhow::Result<Arc<Consumer>> {
        let inner: StreamConsumer<Context> = client_config(
            settings,
            &[
                ("auto.commit.interval.ms", "1000"),
                ("auto.offset.reset", "earliest"),
                ("partition.assignment.strategy", "cooperative-sticky"),
                // librdkafka's own prefetch, across all partitions, and the
                // size of its fetches. Its defaults (64 MiB queued, 50 MiB
                // per fetch, 1 MiB per partition) would dwarf the worker's
                // byte caps: with 16 MiB queued and 16 MiB fetches librdkafka
                // alone peaked at 252 MiB reading the benchmark's 200,000
                // records, with these at 72 MiB, and still delivers several
                // times what the worker places (docs/performance.md).
                ("queued.max.messages.kbytes", "4096"),
                ("fetch.max.bytes", "4194304"),
                ("max.partition.fetch.bytes", "262144"),
                // The broker holds a fetch until data arrives or this long.
                // One fetch at a time serves every partition on a broker, so
                // while the caught-up partitions hold it, a partition resumed
                // after a pause (or a record just published) waits for it to
                // return: at librdkafka's 500 ms this was most of the email
                // partitions' time and of end-to-end latency (docs/performance.md).
                ("fetch.wait.max.ms", "10"),
                // ...or until this much has gathered. With 1 byte (the
                // default) and a steady flow, every few records made a
                // fetch: at 7,700 records/s the broker took 0.41 cores and
                // the worker 0.40; with 64 KiB 0.30 and 0.31, and p99 fell
                // from 484-678 ms to 247-352 ms. A lone record now waits
                // up to the 10 ms above (p99 20 to 29 ms at 200/s).
                ("fetch.min.bytes", "65536"),
                // When the prefetch queue above is full librdkafka postpones
                // the next fetch by this long (1 s by default); the worker's
                // own pause/resume already bounds memory, so waiting a whole
                // second only stalls the partitions that are behind.
                ("fetch.queue.backoff.ms", "10"),
            ],
            // Offsets are stored by hand, only after a batch is durable; a
            // pass-through `enable.auto.offset.store=true` would lose messages.
            &[
                ("group.id", settings.group_id.as_str()),
                ("enable.auto.commit", "true"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "false"),
            ],
        )
        .create_with_context(Context { assignment: Mutex::default(), listener })?;
        inner.subscribe(topics)?;
        Ok(Arc::new(Consumer { inner }))
    }

    /// The next record, copied out of librdkafka's buffer. Rebalance
    /// callbacks run inside this call.
    pub async fn next(&self) -> Result<SourceRecord, KafkaError> {
        let message = self.inner.recv().await?;
        Ok(owned(&message))
    }

    /// Marks everything up to and including `offset` as done; the next
    /// auto-commit sends it. Fails harmlessly when the partition was revoked
    /// meanwhile: its new owner re-reads from the last commit.
    pub fn mark_done(&self, topic: &str, partition: i32, offset: i64) {
        if let Err(e) = self.inner.store_offset(topic, partition, offset) {
            tracing::debug!(topic, partition, offset, error = %e, "Offset not stored; the partition is no longer ours.");
        }
    }

    /// Stops fetching `key`; records prefetched for it are discarded by
    /// librdkafka and fetched again after [`Consumer::resume`].
    pub fn pause(&self, key: &PartitionKey) {
        if let Err(e) = self.inner.pause(&single(key)) {
            tracing::debug!(topic = %key.0, partition = key.1, error = %e, "Pause refused; the partition is no longer ours.");
        }
    }

    /// Fetches `key` again from where the application stopped reading it.
    pub fn resume(&self, key: &PartitionKey) {
        if let Err(e) = self.inner.resume(&single(key)) {
            tracing::debug!(topic = %key.0, partition = key.1, error = %e, "Resume refused; the partition is no longer ours.");
        }
    }

    /// Makes `key`'s next fetch start at `offset` (asynchronous: it does not
    /// wait for the broker).
    pub fn seek(&self, key: &PartitionKey, offset: i64) {
        if let Err(e) = self.inner.seek(&key.0, key.1, Offset::Offset(offset), Duration::ZERO) {
            tracing::warn!(topic = %key.0, partition = key.1, offset, error = %e, "Seek failed.");
        }
    }

    /// Commits the stored offsets now and waits (used on shutdown).
    pub fn commit_now(&self) {
        match self.inner.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(error = %e, "Final offset commit failed."),
        }
    }

    /// Leaves the group before the consumer is dropped: unsubscribing makes
    /// librdkafka revoke the partitions through the rebalance callback, which
    /// runs only while the consumer is polled, so poll until it has run.
    /// Dropping a consumer that still holds partitions instead waits for
    /// librdkafka's close timeout.
    pub async fn leave(&self) {
        self.inner.unsubscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.assignment().is_empty() && tokio::time::Instant::now() < deadline {
            // Records arriving now are not processed; their offsets are not stored.
            let _ = tokio::time::timeout(Duration::from_millis(100), self.inner.recv()).await;
        }
    }

    /// The partitions currently assigned to this member.
    pub fn assignment(&self) -> BTreeSet<PartitionKey> {
        self.inner.context().assignment.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Every partition of `topics` with its (low, high) watermarks, asked of
    /// the broker. Blocking.
    pub fn partition_ends(&self, topics: &[&str]) -> Result<HashMap<PartitionKey, (i64, i64)>, KafkaError> {
        let timeout = Duration::from_secs(10);
        let mut out = HashMap::new();
        for topic in topics {
            let metadata = self.inner.fetch_metadata(Some(topic), timeout)?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    let marks = self.inner.fetch_watermarks(topic, p.id(), timeout)?;
                    out.insert(((*topic).to_owned(), p.id()), marks);
                }
            }
        }
        Ok(out)
    }

    /// The group's committed offset of each partition (absent when the group
    /// committed none). Asks the broker; blocking.
    pub fn committed(&self, partitions: &[PartitionKey]) -> Result<HashMap<PartitionKey, i64>, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
        }
        let committed = self.inner.committed_offsets(tpl, Duration::from_secs(5))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
                _ => None,
            })
            .collect())
    }
}

fn single(key: &PartitionKey) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&key.0, key.1);
    tpl
}

pub(super) fn owned(m: &BorrowedMessage<'_>) -> SourceRecord {
    let headers = m
        .headers()
        .map(|hs| hs.iter().map(|h| Header { key: h.key.to_owned(), value: h.value.map(<[u8]>::to_vec) }).collect())
        .unwrap_or_default();
    SourceRecord {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
    }
}
