//! The partitions this member works on: one slot per partition with its
//! buffer, its task's handles and its [`Lifecycle`] state. Shared by the
//! consuming loop, the rebalance listener and whoever reads the view.

use super::buffer::PartitionBuffer;
use super::lifecycle::{Lifecycle, PartitionView};
use crate::kafka::PartitionKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// A partition's running task, as its owner controls it.
pub(super) struct TaskHandles {
    /// Interrupts a wait for a transient failure to clear.
    pub stop: watch::Sender<bool>,
    /// Becomes `true` (or closed) when the task has ended.
    pub exited: watch::Receiver<bool>,
    pub abort: AbortHandle,
}

impl TaskHandles {
    fn has_exited(&self) -> bool {
        *self.exited.borrow() || self.exited.has_changed().is_err()
    }
}

/// One partition on this member.
pub(super) struct Slot {
    pub state: Lifecycle,
    /// Bumped on every restart, so late news from an older task is ignored.
    pub generation: u64,
    pub buffer: Arc<PartitionBuffer>,
    pub task: TaskHandles,
    /// The offset the next record should have; lower ones are redeliveries.
    pub next_expected: Option<i64>,
    /// The first offset this member read, where a restart goes back to when
    /// nothing was stored yet.
    pub first_offset: Option<i64>,
    /// Everything before this offset is placed and its offset stored.
    pub done_up_to: Option<i64>,
    pub restarts: u32,
}

/// Every partition slot of this member. Cloning shares it; [`Partitions::view`]
/// is the read-only side for health checks and metrics.
#[derive(Clone, Default)]
pub struct Partitions {
    slots: Arc<Mutex<HashMap<PartitionKey, Slot>>>,
}

impl Partitions {
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<PartitionKey, Slot>> {
        // Slots are updated field by field under the lock by code that does
        // not panic midway; a poisoned lock still holds consistent slots.
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The partitions this member holds now, sorted.
    pub fn view(&self) -> Vec<PartitionView> {
        let mut out: Vec<PartitionView> = self
            .lock()
            .iter()
            .map(|((topic, partition), s)| {
                let held = s.buffer.held();
                PartitionView {
                    topic: topic.clone(),
                    partition: *partition,
                    state: s.state,
                    buffered_records: held.records,
                    buffered_bytes: held.bytes,
                    in_flight_records: held.in_flight_records,
                    in_flight_bytes: held.in_flight_bytes,
                    done_up_to: s.done_up_to,
                    restarts: s.restarts,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }

    /// Moves `keys` (all when `None`) to `Draining`: their queued records are
    /// dropped (the next owner reads them again) and their tasks end after
    /// the in-flight batch. With `interrupt`, a batch waiting out a transient
    /// failure gives up at once instead of waiting for it to clear.
    /// Returns what to wait on.
    pub(super) fn start_draining(
        &self,
        keys: Option<&[PartitionKey]>,
        interrupt: bool,
    ) -> Vec<(PartitionKey, watch::Receiver<bool>)> {
        let mut slots = self.lock();
        let mut waiting = Vec::new();
        for (key, slot) in slots.iter_mut() {
            if keys.is_some_and(|ks| !ks.contains(key)) {
                continue;
            }
            slot.state = Lifecycle::Draining;
            slot.buffer.close();
            if interrupt {
                let _ = slot.task.stop.send(true);
            }
            if !slot.task.has_exited() {
                waiting.push((key.clone(), slot.task.exited.clone()));
            }
        }
        waiting
    }

    /// Abandons the tasks of `keys` that are still running: their batches
    /// are not finished, so their offsets are never stored.
    pub(super) fn abandon(&self, keys: &[PartitionKey]) {
        let slots = self.lock();
        for key in keys {
            if let Some(slot) = slots.get(key) {
                let _ = slot.task.stop.send(true);
                slot.task.abort.abort();
            }
        }
    }

    /// Forgets `keys` once they are given away.
    pub(super) fn remove(&self, keys: &[PartitionKey]) {
        let mut slots = self.lock();
        for key in keys {
            slots.remove(key);
        }
    }
}

/// Waits until every task in `waiting` has ended, for at most `timeout`.
/// Returns the partitions whose tasks were still running at the deadline.
pub(super) async fn wait_for_exit(
    waiting: Vec<(PartitionKey, watch::Receiver<bool>)>,
    timeout: Duration,
) -> Vec<PartitionKey> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut late = Vec::new();
    for (key, mut exited) in waiting {
        // An error means the task's sender is gone: it has ended too.
        if tokio::time::timeout_at(deadline, exited.wait_for(|done| *done)).await.is_err() {
            late.push(key);
        }
    }
    late
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot whose "task" ends when its buffer is closed, or never.
    fn slot(ends_on_close: bool) -> Slot {
        let buffer = Arc::new(PartitionBuffer::default());
        let (stop, _) = watch::channel(false);
        let (exited_tx, exited) = watch::channel(false);
        let b = buffer.clone();
        let limits =
            super::super::buffer::Limits { batch_records: 1, batch_bytes: 1, partition_records: 1, partition_bytes: 1 };
        let handle = tokio::spawn(async move {
            if ends_on_close {
                while b.next_batch(&limits).await.is_some() {}
            } else {
                std::future::pending::<()>().await;
            }
            let _ = exited_tx.send(true);
        });
        Slot {
            state: Lifecycle::Assigned,
            generation: 0,
            buffer,
            task: TaskHandles { stop, exited, abort: handle.abort_handle() },
            next_expected: None,
            first_offset: None,
            done_up_to: None,
            restarts: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn draining_waits_for_finished_tasks_and_names_the_late_ones() {
        let partitions = Partitions::default();
        let (quick, stuck) = (("t".to_owned(), 0), ("t".to_owned(), 1));
        partitions.lock().insert(quick.clone(), slot(true));
        partitions.lock().insert(stuck.clone(), slot(false));
        let waiting = partitions.start_draining(None, false);
        assert!(partitions.view().iter().all(|v| v.state == Lifecycle::Draining));
        let late = wait_for_exit(waiting, Duration::from_secs(5)).await;
        assert_eq!(late, vec![stuck.clone()], "only the stuck task missed the deadline");

        partitions.abandon(&late);
        let exited = partitions.lock()[&stuck].task.exited.clone();
        assert!(wait_for_exit(vec![(stuck.clone(), exited)], Duration::from_secs(1)).await.is_empty(), "aborted");
        partitions.remove(&[quick, stuck]);
        assert!(partitions.view().is_empty());
    }
}
