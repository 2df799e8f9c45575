//! The group consumer. Offsets are committed by librdkafka's auto-commit,
//! but only offsets the worker explicitly stored after a batch was durably
//! applied or dead-lettered (`enable.auto.offset.store=false`), so a crash
//! replays at most the unfinished batches, which R0 then absorbs.

use super::client_config;
use crate::config::KafkaSettings;
use crate::record::{Header, SourceRecord};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A (topic, partition).
pub type PartitionKey = (String, i32);

/// Tracks the current assignment, which the stop-at-end logic reads.
#[derive(Default)]
struct Context {
    assignment: Mutex<BTreeSet<PartitionKey>>,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Under the cooperative protocol the callback sees only the change;
        // reading the whole assignment back works for both protocols.
        let current: BTreeSet<PartitionKey> = consumer
            .assignment()
            .map(|tpl| tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect())
            .unwrap_or_default();
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(added = tpl.count(), total = current.len(), "Partitions assigned.")
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(removed = tpl.count(), total = current.len(), "Partitions revoked.")
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "Rebalance failed."),
        }
        if let Ok(mut assignment) = self.assignment.lock() {
            *assignment = current;
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
    /// Creates the consumer and subscribes to `topics`.
    pub fn subscribe(settings: &KafkaSettings, topics: &[&str]) -> anyhow::Result<Arc<Consumer>> {
        let inner: StreamConsumer<Context> = client_config(
            settings,
            &[
                ("auto.commit.interval.ms", "1000"),
                ("auto.offset.reset", "earliest"),
                ("partition.assignment.strategy", "cooperative-sticky"),
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
        .create_with_context(Context::default())?;
        inner.subscribe(topics)?;
        Ok(Arc::new(Consumer { inner }))
    }

    /// The next record, copied out of librdkafka's buffer.
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

    /// The partition's end as last reported by a fetch response, without
    /// asking the broker. Tansu 0.6 answers ListOffsets(latest) with the base
    /// offset of the newest batch plus one, short of the true end, while its
    /// fetch responses carry the right high watermark; librdkafka caches the
    /// latter, so this is correct on Tansu and on Kafka alike.
    pub fn fetched_end(&self, topic: &str, partition: i32) -> Option<i64> {
        let topic = CString::new(topic).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client pointer is valid for the consumer's lifetime, the
        // topic is a NUL-terminated string that outlives the call, and the
        // out-parameters point to live stack variables.
        let err = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.inner.client().native_ptr(),
                topic.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
    }

    /// Where each partition starts for this group: its committed offset, or
    /// the earliest offset when the group has none. Asks the broker; blocking.
    pub fn start_offsets(&self, partitions: &[PartitionKey]) -> HashMap<PartitionKey, i64> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
        }
        let mut out = HashMap::new();
        let Ok(committed) = self.inner.committed_offsets(tpl, Duration::from_secs(3)) else {
            return out;
        };
        for e in committed.elements() {
            let start = match e.offset() {
                Offset::Offset(o) => o,
                _ => self
                    .inner
                    .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(3))
                    .map(|(low, _)| low)
                    .unwrap_or(0),
            };
            out.insert((e.topic().to_owned(), e.partition()), start);
        }
        out
    }
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
