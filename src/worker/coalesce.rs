//! Shared transactions: the batches that several partitions have ready at
//! the same moment are placed together, in one transaction.
//!
//! Why: a transaction has a fixed cost (a dozen statements, a commit that
//! waits for the WAL flush) that a small batch cannot spread. At a steady
//! rate, eighteen partitions each bring a handful of records at a time, and
//! that fixed cost, paid by every one of them, saturated a 2-core machine
//! at a few thousand records per second while the same records in large
//! batches went through several times faster (`docs/performance.md`).
//!
//! How: a partition task submits its decoded batch and waits. A few lanes
//! (`worker.shared_transactions`) take submissions: a free lane takes
//! whatever has queued, up to one batch's caps, and places it in one
//! transaction. Nothing waits for a batch to fill: when a lane is free, a
//! batch goes at once, alone; submissions only gather while every lane is
//! busy, which is exactly when sharing pays.
//!
//! What it must not do, and why it cannot:
//! - Stall the other partitions behind a blocked one. A shared transaction
//!   waits at most `worker.shared_lock_timeout` for any lock (an agent's
//!   conversation row, another worker's batch). Past it, or on any other
//!   error, or a panic, nothing of it is committed and every member places
//!   its batch alone, the ordinary way, with its own retries: only the
//!   blocked one then waits.
//! - Change a decision. The planner places a batch's messages one after the
//!   other whatever partitions they came from, under the same locks, so a
//!   shared transaction decides as the same batches placed one after the
//!   other would. Each partition's records stay in offset order, since a
//!   partition submits its next batch only once this one is done.
//! - Grow the lock footprint. A shared transaction holds at most
//!   `batch_max_records` records, the size the lock budget allows one
//!   transaction (`lock_budget`); with `batch_max_records = 1` (one
//!   transaction per message) nothing is ever shared.

use crate::placement::Policy;
use crate::stats::Stats;
use crate::store::{Item, Outcome, Store};
use futures::FutureExt as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Mutex};

/// One partition's decoded batch, waiting for a lane.
struct Submission {
    items: Arc<Vec<Item>>,
    records: usize,
    bytes: usize,
    reply: oneshot::Sender<Shared>,
    /// When it was submitted: the start of its wait for a lane.
    submitted: Instant,
}

/// A batch placed in a shared transaction: its outcomes, in order, and how
/// long it waited for a lane to take it (the worker's latency by stage).
#[derive(Debug)]
pub struct Shared {
    pub outcomes: Vec<Outcome>,
    pub lane_wait: Duration,
}

/// Which batches are shared, and the caps of one shared transaction.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Batches of more records, or more bytes, go alone (see
    /// [`Coalescer::place`]).
    pub batch_records: usize,
    pub batch_bytes: usize,
    /// What one shared transaction holds at most, in all: one batch's caps.
    pub records: usize,
    pub bytes: usize,
}

/// What the lanes read from: the queue of submissions, and the one taken
/// last that did not fit the group before.
struct Intake {
    queue: mpsc::UnboundedReceiver<Submission>,
    held_over: Option<Submission>,
}

/// The entrance to the lanes; dropping it ends them once they are idle.
pub struct Coalescer {
    submit: mpsc::UnboundedSender<Submission>,
    caps: Caps,
    stats: Arc<Stats>,
}

/// What every lane shares.
struct Lanes {
    intake: Mutex<Intake>,
    store: Store,
    policy: Policy,
    stats: Arc<Stats>,
    caps: Caps,
    lock_timeout: Duration,
}

impl Coalescer {
    /// Starts `lanes` lanes.
    pub fn start(
        lanes: usize,
        caps: Caps,
        lock_timeout: Duration,
        store: Store,
        policy: Policy,
        stats: Arc<Stats>,
    ) -> Coalescer {
        let (submit, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Lanes {
            intake: Mutex::new(Intake { queue, held_over: None }),
            store,
            policy,
            stats: stats.clone(),
            caps,
            lock_timeout,
        });
        for _ in 0..lanes {
            tokio::spawn(shared.clone().run());
        }
        Coalescer { submit, caps, stats }
    }

    /// Places `items` (one partition's batch of `records` records, `bytes`
    /// bytes) in a shared transaction. `None`: nothing of them is committed;
    /// the caller places them alone.
    ///
    /// A large batch is not shared: it spreads the fixed cost well enough
    /// alone, and large batches placed side by side, each on its own
    /// connection, keep Postgres's cores busy while one waits for its
    /// flush. Funnelled through the few lanes, a backlog went slower.
    pub async fn place(&self, items: Arc<Vec<Item>>, records: usize, bytes: usize) -> Option<Shared> {
        if records > self.caps.batch_records || bytes > self.caps.batch_bytes {
            return None;
        }
        let (reply, answer) = oneshot::channel();
        self.stats.shared_waiting(1);
        if self.submit.send(Submission { items, records, bytes, reply, submitted: Instant::now() }).is_err() {
            self.stats.shared_waiting(-1);
            return None;
        }
        answer.await.ok()
    }
}

impl Lanes {
    async fn run(self: Arc<Self>) {
        while let Some(group) = self.gather().await {
            self.place(group).await;
        }
    }

    /// Waits for a submission, then takes every one queued behind it that
    /// fits the caps. `None` once the coalescer is dropped.
    async fn gather(&self) -> Option<Vec<Submission>> {
        let mut intake = self.intake.lock().await;
        let first = match intake.held_over.take() {
            Some(s) => s,
            None => intake.queue.recv().await?,
        };
        let (mut records, mut bytes) = (first.records, first.bytes);
        let mut group = vec![first];
        while let Ok(next) = intake.queue.try_recv() {
            // A member that stopped waiting (its task was aborted) is
            // dropped; its partition's next owner places the records.
            if next.reply.is_closed() {
                self.stats.shared_waiting(-1);
                continue;
            }
            if records + next.records > self.caps.records || bytes + next.bytes > self.caps.bytes {
                intake.held_over = Some(next);
                break;
            }
            records += next.records;
            bytes += next.bytes;
            group.push(next);
        }
        self.stats.shared_waiting(-(group.len() as i64));
        Some(group)
    }

    /// One shared transaction. On success each member gets its outcomes;
    /// otherwise the replies are dropped, which sends every member to place
    /// its batch alone.
    async fn place(&self, group: Vec<Submission>) {
        let taken = Instant::now();
        let items: Vec<&Item> = group.iter().flat_map(|s| s.items.iter()).collect();
        let placed = AssertUnwindSafe(self.store.apply_batch_waiting_at_most(&items, &self.policy, self.lock_timeout))
            .catch_unwind()
            .await;
        drop(items);
        let members = group.len();
        match placed {
            Ok(Ok(placed)) => {
                self.stats.batch_effects(&placed.effects);
                self.stats.shared_transaction(members, true);
                let mut outcomes = placed.outcomes.into_iter();
                for member in group {
                    let mine = outcomes.by_ref().take(member.items.len()).collect();
                    let lane_wait = taken.saturating_duration_since(member.submitted);
                    let _ = member.reply.send(Shared { outcomes: mine, lane_wait });
                }
            }
            Ok(Err(e)) => {
                self.stats.shared_transaction(members, false);
                tracing::debug!(members, error = %e, "A shared transaction failed; its batches are placed one by one.");
            }
            Err(_) => {
                self.stats.shared_transaction(members, false);
                tracing::warn!(members, "A shared transaction panicked; its batches are placed one by one.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lanes that are never started: `gather` alone, on a queue filled by hand.
    fn lanes(records: usize, bytes: usize) -> (Arc<Lanes>, mpsc::UnboundedSender<Submission>) {
        let (submit, queue) = mpsc::unbounded_channel();
        let store = Store::connect_lazy("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
        let lanes = Lanes {
            intake: Mutex::new(Intake { queue, held_over: None }),
            store,
            policy: Policy::default(),
            stats: Arc::new(Stats::default()),
            caps: Caps { batch_records: records, batch_bytes: bytes, records, bytes },
            lock_timeout: Duration::from_millis(1),
        };
        (Arc::new(lanes), submit)
    }

    fn submit(queue: &mpsc::UnboundedSender<Submission>, records: usize, bytes: usize) -> oneshot::Receiver<Shared> {
        let (reply, answer) = oneshot::channel();
        queue
            .send(Submission { items: Arc::new(Vec::new()), records, bytes, reply, submitted: Instant::now() })
            .unwrap();
        answer
    }

    fn sizes(group: &[Submission]) -> Vec<(usize, usize)> {
        group.iter().map(|s| (s.records, s.bytes)).collect()
    }

    #[tokio::test]
    async fn a_group_takes_what_queued_up_to_the_caps_and_the_rest_waits_its_turn() {
        let (lanes, queue) = lanes(10, 1000);
        let _answers: Vec<_> =
            [(4, 100), (5, 100), (3, 100), (1, 950), (2, 10)].into_iter().map(|(r, b)| submit(&queue, r, b)).collect();
        // 4 + 5 fit; 3 more records would make 12.
        assert_eq!(sizes(&lanes.gather().await.unwrap()), [(4, 100), (5, 100)]);
        // The one held over leads the next group; 950 more bytes would not fit.
        assert_eq!(sizes(&lanes.gather().await.unwrap()), [(3, 100)]);
        assert_eq!(sizes(&lanes.gather().await.unwrap()), [(1, 950), (2, 10)]);
    }

    #[tokio::test]
    async fn a_member_that_stopped_waiting_is_left_out() {
        let (lanes, queue) = lanes(10, 1000);
        let _first = submit(&queue, 1, 1);
        drop(submit(&queue, 2, 2));
        let _third = submit(&queue, 3, 3);
        assert_eq!(sizes(&lanes.gather().await.unwrap()), [(1, 1), (3, 3)]);
    }

    #[tokio::test]
    async fn the_lanes_end_when_the_coalescer_is_dropped() {
        let (lanes, queue) = lanes(10, 1000);
        drop(queue);
        assert!(lanes.gather().await.is_none());
    }

    #[tokio::test]
    async fn a_large_batch_is_never_shared() {
        let store = Store::connect_lazy("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
        let caps = Caps { batch_records: 100, batch_bytes: 200_000, records: 500, bytes: 1_000_000 };
        let coalescer =
            Coalescer::start(0, caps, Duration::from_millis(1), store, Policy::default(), Arc::new(Stats::default()));
        // No lane runs: a batch that were queued would wait forever.
        assert!(coalescer.place(Arc::new(Vec::new()), 101, 10).await.is_none());
        assert!(coalescer.place(Arc::new(Vec::new()), 10, 200_001).await.is_none());
    }
}
