//! Handing partitions over in a rebalance. The consumer's rebalance callback
//! hands the loop a [`Revoking`] and blocks its own polling thread (never a
//! runtime thread) until it is answered. The loop drains the revoked
//! partitions (no new records, queues dropped) and leaves a waiter on the
//! runtime; the loop itself keeps running, so batch news and other
//! partitions are served meanwhile. When the in-flight batches have
//! finished (their offsets stored), or at `drain_timeout` have been
//! abandoned unfinished, the loop forgets the partitions and answers. The
//! consumer then commits, and only after that can the new owner fetch: it
//! starts exactly after the last finished batch, and never reads a record
//! this member is still placing.

use super::lifecycle::Event;
use super::partitions::wait_for_exit;
use super::reader::{Note, Reader};
use crate::kafka::{PartitionKey, Revoking};

impl Reader {
    /// Partitions are being revoked: drain them, answer once they are.
    pub(super) fn revoking(&self, revoking: Revoking) {
        let keys = &revoking.partitions;
        for key in keys {
            self.partitions.on(key, Event::Revoke, &self.hands);
        }
        let running = self.partitions.running(Some(keys));
        if running.is_empty() {
            self.partitions.remove(keys);
            revoking.drained();
            return;
        }
        tracing::info!(
            partitions = running.len(),
            timeout_ms = self.drain_timeout.as_millis() as u64,
            "Finishing in-flight batches of revoked partitions."
        );
        let (notes, timeout) = (self.notes_tx.clone(), self.drain_timeout);
        tokio::spawn(async move {
            let late = wait_for_exit(running, timeout).await;
            // Fails only once the loop has finished; dropping the answer
            // then releases the consumer, everything being stopped.
            let _ = notes.send(Note::Drained { revoking, late });
        });
    }

    /// The revoked partitions' tasks have ended, or `late` ones are past
    /// `drain_timeout`: abandon those, forget all, let the consumer commit.
    pub(super) fn drained(&self, revoking: Revoking, late: &[PartitionKey]) {
        if !late.is_empty() {
            tracing::warn!(partitions = ?late, "Revoked partitions' batches did not finish in time; abandoned unfinished, their new owner places them again.");
            for key in late {
                self.partitions.on(key, Event::Abandon, &self.hands);
            }
        }
        self.partitions.remove(&revoking.partitions);
        revoking.drained();
    }

    /// Partitions were lost (this member's session expired): someone else
    /// may read them already and nothing of theirs can be committed, so
    /// their batches are abandoned at once rather than finished.
    pub(super) fn lost(&self, keys: &[PartitionKey]) {
        tracing::warn!(partitions = ?keys, "Partitions lost without a handover; their batches are abandoned and their new owner places them.");
        for key in keys {
            self.partitions.on(key, Event::Abandon, &self.hands);
        }
        self.partitions.remove(keys);
    }
}
