//! The partitions this member works on, by key. Only the consuming loop
//! changes them, through [`Partition::on`]; anyone may read a
//! [`Partitions::view`] (health checks, metrics).

use super::lifecycle::{Event, Hands, Partition, PartitionView};
use crate::kafka::PartitionKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Every partition of this member. Cloning shares it.
#[derive(Clone, Default)]
pub struct Partitions {
    slots: Arc<Mutex<HashMap<PartitionKey, Partition>>>,
}

/// Tasks to wait for, by partition.
pub(super) type Running = Vec<(PartitionKey, watch::Receiver<bool>)>;

impl Partitions {
    fn lock(&self) -> MutexGuard<'_, HashMap<PartitionKey, Partition>> {
        // Transitions do not panic midway (they log, spawn, and call the
        // consumer, which reports failures as values); a poisoned lock
        // still holds consistent partitions.
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The partitions this member holds now, sorted.
    pub fn view(&self) -> Vec<PartitionView> {
        let mut out: Vec<PartitionView> = self.lock().values().map(Partition::view).collect();
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }

    /// Adds newly assigned partitions (those already here stay as they are).
    pub(super) fn assign(&self, keys: &[PartitionKey]) {
        let mut slots = self.lock();
        for key in keys {
            slots.entry(key.clone()).or_insert_with(|| Partition::assigned(key.clone()));
        }
    }

    /// Applies `event` to `key`; nothing when `key` is not held (a record
    /// fetched before its partition was given away, news from a task whose
    /// partition is gone).
    pub(super) fn on(&self, key: &PartitionKey, event: Event, hands: &Hands) {
        if let Some(partition) = self.lock().get_mut(key) {
            partition.on(event, hands);
        }
    }

    /// Applies an event made by `event` to every partition.
    pub(super) fn on_all(&self, event: impl Fn() -> Event, hands: &Hands) {
        for partition in self.lock().values_mut() {
            partition.on(event(), hands);
        }
    }

    /// The tasks of `keys` (all when `None`) still running.
    pub(super) fn running(&self, keys: Option<&[PartitionKey]>) -> Running {
        self.lock()
            .iter()
            .filter(|(key, _)| keys.is_none_or(|ks| ks.contains(key)))
            .filter_map(|(key, p)| Some((key.clone(), p.running()?)))
            .collect()
    }

    /// Forgets `keys` once they are given away.
    pub(super) fn remove(&self, keys: &[PartitionKey]) {
        let mut slots = self.lock();
        for key in keys {
            slots.remove(key);
        }
    }
}

/// Waits until every task in `running` has ended, for at most `timeout`.
/// Returns the partitions whose tasks were still running at the deadline.
pub(super) async fn wait_for_exit(running: Running, timeout: Duration) -> Vec<PartitionKey> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut late = Vec::new();
    for (key, mut exited) in running {
        // An error means the task's sender is gone: it has ended too.
        if tokio::time::timeout_at(deadline, exited.wait_for(|done| *done)).await.is_err() {
            late.push(key);
        }
    }
    late
}
