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
use super::polling::{poll_loop, Context, HANDOFFS};
use super::source::{Polled, Source};
use crate::record::{Header, SourceRecord};
use crate::settings::KafkaSettings;
use futures::future::BoxFuture;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A (topic, partition).
pub type PartitionKey = (String, i32);

/// The worker's consumer of the three input topics, in one group.
///
/// librdkafka runs rebalance callbacks on whichever thread polls, and the
/// revoke callback must wait for the worker's in-flight batches. So a
/// dedicated thread (not a runtime thread) polls, and hands records and
/// rebalances to the worker, in order, over a channel ([`Consumer::poll`]):
/// the callback can block that thread while the partition tasks finish on
/// the runtime, and no tokio worker is ever blocked (docs/decisions.md,
/// "Rebalances: a polling thread").
pub struct Consumer {
    inner: Arc<BaseConsumer<Context>>,
    /// The worker's end of the channel; `None` once closed.
    polled: tokio::sync::Mutex<Handoffs>,
    /// Seeks for the polling thread to make.
    seeks: Mutex<std::sync::mpsc::Sender<(PartitionKey, i64)>>,
    running: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Consumer {
    /// Creates the consumer, subscribes to `topics` and starts polling;
    /// records and rebalances come out of [`Source::poll`].
    pub fn subscribe(settings: &KafkaSettings, topics: &[&str]) -> anyhow::Result<Arc<Consumer>> {
        let (tx, rx) = mpsc::channel(HANDOFFS);
        let inner: BaseConsumer<Context> = client_config(
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
        .create_with_context(Context::new(tx))?;
        inner.subscribe(topics)?;
        let inner = Arc::new(inner);
        let running = Arc::new(AtomicBool::new(true));
        let (seeks, seeks_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("kafka-poll".to_owned()).spawn({
            let (inner, running) = (inner.clone(), running.clone());
            move || poll_loop(inner, seeks_rx, running)
        })?;
        Ok(Arc::new(Consumer {
            inner,
            polled: tokio::sync::Mutex::new(Handoffs { rx: Some(rx), taken: VecDeque::new() }),
            seeks: Mutex::new(seeks),
            running,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Leaves the group before the consumer is dropped: stops handing
    /// records and rebalances to the worker (a revocation waiting for an
    /// answer is released), unsubscribes, lets the polling thread serve the
    /// revocation that follows, then stops that thread. Dropping a consumer
    /// that still holds partitions instead waits for librdkafka's close
    /// timeout.
    pub async fn leave(&self) {
        let mut handoffs = self.polled.lock().await;
        // Dropping what was queued releases a waiting revocation.
        handoffs.taken.clear();
        if let Some(mut rx) = handoffs.rx.take() {
            rx.close();
            while rx.try_recv().is_ok() {}
        }
        drop(handoffs);
        self.inner.unsubscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.assignment().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.running.store(false, Ordering::Relaxed);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            // The thread ends within one poll (`POLL_WAIT`).
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
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

/// The worker's end of the polling thread's hand-offs.
struct Handoffs {
    /// `None` once closed.
    rx: Option<mpsc::Receiver<Vec<Polled>>>,
    /// The rest of the last hand-off, in order.
    taken: VecDeque<Polled>,
}

impl Drop for Consumer {
    /// Ends the polling thread if [`Consumer::leave`] did not.
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

impl Source for Consumer {
    fn poll(&self) -> BoxFuture<'_, Option<Polled>> {
        Box::pin(async move {
            let mut handoffs = self.polled.lock().await;
            loop {
                if let Some(polled) = handoffs.taken.pop_front() {
                    return Some(polled);
                }
                let next = handoffs.rx.as_mut()?.recv().await?;
                handoffs.taken.extend(next);
            }
        })
    }

    /// Records prefetched for `key` are discarded by librdkafka and fetched
    /// again after [`Source::resume`].
    fn pause(&self, key: &PartitionKey) {
        if let Err(e) = self.inner.pause(&single(key)) {
            tracing::debug!(topic = %key.0, partition = key.1, error = %e, "Pause refused; the partition is no longer ours.");
        }
    }

    fn resume(&self, key: &PartitionKey) {
        if let Err(e) = self.inner.resume(&single(key)) {
            tracing::debug!(topic = %key.0, partition = key.1, error = %e, "Resume refused; the partition is no longer ours.");
        }
    }

    /// Made by the polling thread between two polls (see `poll_loop`);
    /// it does not wait for the broker.
    fn seek(&self, key: &PartitionKey, offset: i64) {
        if let Ok(seeks) = self.seeks.lock() {
            // Fails only once the polling thread has ended.
            let _ = seeks.send((key.clone(), offset));
        }
    }

    /// The next auto-commit sends it. Fails harmlessly when the partition
    /// was revoked meanwhile: its new owner re-reads from the last commit.
    fn store_offset(&self, key: &PartitionKey, offset: i64) {
        if let Err(e) = self.inner.store_offset(&key.0, key.1, offset) {
            tracing::debug!(topic = %key.0, partition = key.1, offset, error = %e, "Offset not stored; the partition is no longer ours.");
        }
    }

    fn assignment(&self) -> BTreeSet<PartitionKey> {
        self.inner.context().assignment()
    }

    fn commit(&self) {
        match self.inner.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(error = %e, "Offset commit failed."),
        }
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
