//! Handing partitions over in a rebalance. librdkafka calls
//! [`Handover::revoking`] before it gives partitions away; it returns only
//! when their in-flight batches have finished (and stored their offsets),
//! or, past `drain_timeout`, when they have been abandoned unfinished. The
//! consumer then commits, and only after that can the new owner fetch: it
//! starts exactly after the last finished batch, and never reads a record
//! this member is still placing.

use super::partitions::{wait_for_exit, Partitions};
use crate::kafka::{PartitionKey, RebalanceListener};
use std::time::Duration;
use tokio::runtime::{Handle, RuntimeFlavor};

/// The worker's side of a rebalance.
pub(super) struct Handover {
    pub partitions: Partitions,
    pub drain_timeout: Duration,
}

impl RebalanceListener for Handover {
    fn assigned(&self, partitions: &[PartitionKey]) {
        // A slot and a task start with a partition's first record, so an
        // idle partition costs nothing.
        tracing::debug!(partitions = ?partitions, "Partitions will start with their first record.");
    }

    fn revoking(&self, partitions: &[PartitionKey]) {
        let waiting = self.partitions.start_draining(Some(partitions), false);
        if !waiting.is_empty() {
            tracing::info!(
                partitions = waiting.len(),
                timeout_ms = self.drain_timeout.as_millis() as u64,
                "Finishing in-flight batches of revoked partitions."
            );
            let late = match Handle::try_current() {
                // The callback runs on the thread polling the consumer, a
                // runtime thread: let the runtime move its other tasks away
                // while this one waits for the partition tasks.
                Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| handle.block_on(wait_for_exit(waiting, self.drain_timeout)))
                }
                // A single-threaded runtime cannot run the tasks while this
                // thread waits: abandon at once (nothing is stored for them).
                _ => waiting.into_iter().map(|(k, _)| k).collect(),
            };
            if !late.is_empty() {
                tracing::warn!(partitions = ?late, "Revoked partitions' batches did not finish in time; abandoned unfinished, their new owner places them again.");
                self.partitions.abandon(&late);
            }
        }
        self.partitions.remove(partitions);
    }
}
