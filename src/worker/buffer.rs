//! A partition's buffer: the records the consuming loop has handed over and
//! the partition's task has not finished, bounded in records and bytes.
//!
//! Records are moved, never copied: the loop moves a record in, the task
//! moves a batch out and reports it finished; until then the batch still
//! counts against the caps, so the caps bound all memory the partition holds.

use crate::record::SourceRecord;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::Notify;

/// Fixed cost counted per record on top of its bytes (the struct, strings).
const RECORD_OVERHEAD: usize = 128;

/// The bytes a record holds in memory, as the caps count them.
pub(super) fn record_bytes(r: &SourceRecord) -> usize {
    let headers: usize = r.headers.iter().map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len)).sum();
    RECORD_OVERHEAD + r.topic.len() + r.key.as_ref().map_or(0, Vec::len) + r.value_len() + headers
}

/// How much a partition holds: queued plus being placed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Held {
    pub records: usize,
    pub bytes: usize,
    /// Of which the batch being placed.
    pub in_flight_records: usize,
    pub in_flight_bytes: usize,
}

/// Caps on what one batch and one partition may hold.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub batch_records: usize,
    pub batch_bytes: usize,
    pub partition_records: usize,
    pub partition_bytes: usize,
}

impl Limits {
    /// The partition should stop fetching.
    pub(super) fn full(&self, h: Held) -> bool {
        h.records >= self.partition_records || h.bytes >= self.partition_bytes
    }

    /// A paused partition may fetch again: both below half, so a partition
    /// does not flap between paused and resumed on every batch.
    pub(super) fn drained(&self, h: Held) -> bool {
        h.records <= self.partition_records / 2 && h.bytes <= self.partition_bytes / 2
    }
}

/// A batch taken from a buffer.
pub(super) struct Taken {
    pub records: Vec<SourceRecord>,
    pub bytes: usize,
    /// When each record was handed to the buffer, in the same order: the
    /// worker's own share of a record's latency starts there.
    pub received: Vec<Instant>,
}

#[derive(Default)]
struct Queue {
    records: VecDeque<(SourceRecord, usize, Instant)>,
    queued_bytes: usize,
    in_flight_records: usize,
    in_flight_bytes: usize,
}

impl Queue {
    fn held(&self) -> Held {
        Held {
            records: self.records.len() + self.in_flight_records,
            bytes: self.queued_bytes + self.in_flight_bytes,
            in_flight_records: self.in_flight_records,
            in_flight_bytes: self.in_flight_bytes,
        }
    }
}

/// One partition's buffer, shared by the consuming loop and the task.
#[derive(Default)]
pub(super) struct PartitionBuffer {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl PartitionBuffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue half
        // updated (every update is a few plain assignments), so a poisoned
        // lock is still usable.
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a record; returns what the partition now holds.
    pub(super) fn push(&self, record: SourceRecord) -> Held {
        let mut q = self.lock();
        let size = record_bytes(&record);
        q.queued_bytes += size;
        q.records.push_back((record, size, Instant::now()));
        let held = q.held();
        drop(q);
        self.wake.notify_one();
        held
    }

    /// Waits for records and takes the next batch within `limits` (at
    /// least one record, even one larger than the byte cap). Cancel-safe:
    /// nothing is taken until it returns.
    pub(super) async fn next_batch(&self, limits: &Limits) -> Taken {
        loop {
            {
                let mut q = self.lock();
                if !q.records.is_empty() {
                    let mut batch = Vec::new();
                    let mut received = Vec::new();
                    let mut bytes = 0;
                    while let Some((_, size, _)) = q.records.front() {
                        let size = *size;
                        if !batch.is_empty()
                            && (batch.len() >= limits.batch_records || bytes + size > limits.batch_bytes)
                        {
                            break;
                        }
                        if let Some((record, _, at)) = q.records.pop_front() {
                            batch.push(record);
                            received.push(at);
                            bytes += size;
                        }
                    }
                    q.queued_bytes -= bytes;
                    q.in_flight_records = batch.len();
                    q.in_flight_bytes = bytes;
                    return Taken { records: batch, bytes, received };
                }
            }
            self.wake.notified().await;
        }
    }

    /// The batch taken last is done (placed or abandoned).
    pub(super) fn finished(&self) -> Held {
        let mut q = self.lock();
        q.in_flight_records = 0;
        q.in_flight_bytes = 0;
        q.held()
    }

    /// Drops the queued records (a partition handed over or stopping leaves
    /// them to whoever reads it next); the batch being placed still counts.
    pub(super) fn clear(&self) {
        let mut q = self.lock();
        q.records.clear();
        q.queued_bytes = 0;
    }

    /// What the partition holds now.
    pub(super) fn held(&self) -> Held {
        self.lock().held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, bytes: usize) -> SourceRecord {
        crate::test_records::zeros(offset, bytes)
    }

    fn limits() -> Limits {
        Limits { batch_records: 3, batch_bytes: 10_000, partition_records: 10, partition_bytes: 50_000 }
    }

    #[tokio::test]
    async fn a_batch_is_cut_by_records_and_by_bytes_and_counts_until_finished() {
        let b = PartitionBuffer::default();
        for n in 0..5 {
            b.push(record(n, 100));
        }
        let taken = b.next_batch(&limits()).await;
        assert_eq!(taken.records.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(taken.received.len(), 3, "one receipt time per record");
        assert!(taken.received.windows(2).all(|w| w[0] <= w[1]), "in the order they came");
        assert_eq!(b.held().records, 5, "the batch still counts while it is placed");
        assert_eq!(b.finished().records, 2);

        let b = PartitionBuffer::default();
        b.push(record(0, 6_000));
        b.push(record(1, 6_000));
        let taken = b.next_batch(&limits()).await;
        assert_eq!(taken.records.len(), 1, "two would pass the byte cap");
        assert!(taken.bytes >= 6_000);
    }

    #[test]
    fn a_records_key_and_headers_count_towards_the_caps_as_its_value_does() {
        // The key is not read by placement, only held and copied into a
        // dead letter: a producer's megabyte key weighs like a value.
        let mut r = record(0, 10);
        let plain = record_bytes(&r);
        r.key = Some(vec![b'k'; 1 << 20]);
        assert_eq!(record_bytes(&r), plain + (1 << 20));
        r.headers.push(crate::record::Header { key: "h".repeat(100), value: Some(vec![0; 1000]) });
        assert_eq!(record_bytes(&r), plain + (1 << 20) + 1100);
    }

    #[tokio::test]
    async fn a_record_larger_than_the_batch_cap_still_goes_alone() {
        let b = PartitionBuffer::default();
        b.push(record(0, 20_000));
        let taken = b.next_batch(&limits()).await;
        assert_eq!(taken.records.len(), 1);
    }

    #[test]
    fn full_and_drained_have_a_gap_between_them() {
        let l = limits();
        let h = |records, bytes| Held { records, bytes, ..Held::default() };
        assert!(l.full(h(10, 0)) && l.full(h(1, 50_000)));
        assert!(!l.full(h(9, 49_999)));
        assert!(!l.drained(h(6, 0)) && l.drained(h(5, 25_000)));
    }

    #[tokio::test]
    async fn clearing_drops_the_queue_but_not_the_batch_being_placed() {
        let b = PartitionBuffer::default();
        b.push(record(0, 1));
        let _taken = b.next_batch(&limits()).await;
        b.push(record(1, 1));
        b.clear();
        assert_eq!(b.held().records, 1, "the batch in flight still counts");
        assert_eq!(b.finished().records, 0);
    }
}
