//! What the worker needs of a group consumer, as a small trait: the records
//! and rebalances it delivers, in order, and the few calls the worker makes
//! back (pause, resume, seek, store an offset, commit). The real
//! [`Consumer`](super::Consumer) implements it over librdkafka; the worker's
//! unit tests implement it with a scripted fake, so every partition
//! transition is tested without a broker.

use super::PartitionKey;
use crate::failure::Infra;
use crate::record::SourceRecord;
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::sync::mpsc;

/// One thing the consumer delivers, in the order it happened.
#[derive(Debug)]
pub enum Polled {
    /// A record, copied out of librdkafka's buffer.
    Record(SourceRecord),
    /// `partitions` were added to this member's assignment. Comes before
    /// any of their records.
    Assigned(Vec<PartitionKey>),
    /// Partitions are about to be given away; the rebalance waits until the
    /// [`Revoking`] is answered (or dropped), then commits the stored
    /// offsets and lets the new owner fetch.
    Revoking(Revoking),
    /// `partitions` were taken away without a handover (this member's
    /// session expired): their new owner may already read them, and
    /// nothing of theirs can be committed any more.
    Lost(Vec<PartitionKey>),
    /// A [`Source::seek`] of this partition took effect: records of it
    /// delivered before this were fetched from the old position, those
    /// after it from the new one.
    Seeked(PartitionKey),
    /// The consumer failed for the infrastructure's reason (`Some`: the
    /// broker unreachable, an ACL, SASL or TLS refusal, a missing topic), or
    /// such a failure is over (`None`: records flow again).
    Trouble(Option<Infra>),
}

/// A revocation waiting for its answer. The consumer's rebalance callback
/// blocks on its own (non-runtime) thread until [`Revoking::drained`] is
/// called or this value is dropped, whichever comes first.
#[derive(Debug)]
pub struct Revoking {
    /// The partitions being given away.
    pub partitions: Vec<PartitionKey>,
    answer: mpsc::SyncSender<()>,
}

impl Revoking {
    /// A revocation of `partitions` and the receiver its answer arrives on.
    pub fn new(partitions: Vec<PartitionKey>) -> (Revoking, mpsc::Receiver<()>) {
        let (answer, answered) = mpsc::sync_channel(1);
        (Revoking { partitions, answer }, answered)
    }

    /// The revoked partitions' in-flight batches are finished (offsets
    /// stored) or abandoned: the consumer may commit and give them away.
    pub fn drained(self) {
        // The receiver is gone only if the consumer stopped waiting.
        let _ = self.answer.send(());
    }
}

/// A group consumer as the worker uses it. Every method but [`Source::poll`]
/// returns at once; failures of pause, resume, seek and store concern
/// partitions no longer assigned, so they are logged, not returned.
pub trait Source: Send + Sync + 'static {
    /// The next record or rebalance; `None` once the consumer has closed.
    /// Cancel-safe: dropping the future loses nothing.
    fn poll(&self) -> BoxFuture<'_, Option<Polled>>;
    /// Stops fetching `key`.
    fn pause(&self, key: &PartitionKey);
    /// Fetches `key` again.
    fn resume(&self, key: &PartitionKey);
    /// Makes `key`'s next fetch start at `offset`; a [`Polled::Seeked`]
    /// marks where in the delivered order that took effect.
    fn seek(&self, key: &PartitionKey, offset: i64);
    /// Marks everything up to and including `offset` of `key` as done, for
    /// the next commit.
    fn store_offset(&self, key: &PartitionKey, offset: i64);
    /// The partitions assigned to this member now.
    fn assignment(&self) -> BTreeSet<PartitionKey>;
    /// Commits the stored offsets and waits for the broker (blocking).
    fn commit(&self);
}
