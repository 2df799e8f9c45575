//! For the worker's unit tests: a scripted consumer and a batch step whose
//! outcome the test controls, wired to a real consuming loop. No broker,
//! no Postgres.

use super::buffer::Limits;
use super::lifecycle::{Hands, Lifecycle, PartitionView};
use super::partition::{Spawner, Step};
use super::partitions::Partitions;
use super::reader::Reader;
use super::retry::{Interrupted, RetryPolicy};
use crate::kafka::{PartitionKey, Polled, Revoking, Source};
use crate::record::SourceRecord;
use crate::stats::Stats;
use crate::telemetry::Telemetry;
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};

/// A call the worker made on the consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Call {
    Pause(i32),
    Resume(i32),
    Seek(i32, i64),
    Store(i32, i64),
}

/// A consumer that delivers what the test feeds it and records the calls.
pub(super) struct FakeSource {
    feed: tokio::sync::Mutex<mpsc::UnboundedReceiver<Polled>>,
    /// Where a seek's marker goes, as the real consumer's polling thread
    /// sends it.
    seeked: mpsc::WeakUnboundedSender<Polled>,
    /// While set, seeks do not take effect until [`Rig::seeks_take_effect`].
    pub hold_seeks: AtomicBool,
    held: Mutex<Vec<PartitionKey>>,
    calls: Mutex<Vec<Call>>,
}

impl FakeSource {
    /// The calls so far, in order.
    pub(super) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

impl Source for FakeSource {
    fn poll(&self) -> BoxFuture<'_, Option<Polled>> {
        Box::pin(async move { self.feed.lock().await.recv().await })
    }
    fn pause(&self, key: &PartitionKey) {
        self.record(Call::Pause(key.1));
    }
    fn resume(&self, key: &PartitionKey) {
        self.record(Call::Resume(key.1));
    }
    fn seek(&self, key: &PartitionKey, offset: i64) {
        self.record(Call::Seek(key.1, offset));
        if self.hold_seeks.load(Ordering::SeqCst) {
            self.held.lock().unwrap().push(key.clone());
        } else if let Some(feed) = self.seeked.upgrade() {
            let _ = feed.send(Polled::Seeked(key.clone()));
        }
    }
    fn store_offset(&self, key: &PartitionKey, offset: i64) {
        self.record(Call::Store(key.1, offset));
    }
    fn assignment(&self) -> BTreeSet<PartitionKey> {
        BTreeSet::new()
    }
    fn commit(&self) {}
}

/// A batch step: batches finish when the test lets them through the gate
/// (or always, once opened); while `failing`, every batch waits out a
/// "transient failure" until interrupted; `panic_at` panics once.
pub(super) struct FakeStep {
    gate: Semaphore,
    open: AtomicBool,
    pub failing: AtomicBool,
    pub panic_at: Mutex<Option<i64>>,
    /// Panics on every batch holding this offset.
    pub panic_always_at: Mutex<Option<i64>>,
    /// Records dead-lettered as `panicked` by a quarantining task.
    pub quarantined: Mutex<Vec<i64>>,
    /// Batches begun, interrupted, and dropped unfinished.
    pub started: AtomicUsize,
    pub interrupted: AtomicUsize,
    pub cancelled: AtomicUsize,
}

impl Default for FakeStep {
    fn default() -> FakeStep {
        FakeStep {
            gate: Semaphore::new(0),
            open: AtomicBool::default(),
            failing: AtomicBool::default(),
            panic_at: Mutex::default(),
            panic_always_at: Mutex::default(),
            quarantined: Mutex::default(),
            started: AtomicUsize::default(),
            interrupted: AtomicUsize::default(),
            cancelled: AtomicUsize::default(),
        }
    }
}

impl FakeStep {
    /// Lets `n` more batches finish.
    pub(super) fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// Lets every batch finish from now on.
    pub(super) fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

/// Counts a batch dropped before it returned.
struct Unfinished<'a>(&'a AtomicUsize, bool);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Step for FakeStep {
    fn place<'a>(
        &'a self,
        records: &'a [SourceRecord],
        _bytes: usize,
        stop: &'a watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<Option<Duration>, Interrupted>> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            let mut guard = Unfinished(&self.cancelled, false);
            let panic_at = *self.panic_at.lock().unwrap();
            if let Some(at) = panic_at.filter(|at| records.iter().any(|r| r.offset == *at)) {
                *self.panic_at.lock().unwrap() = None;
                guard.1 = true;
                panic!("fake step panics at {at}");
            }
            let always = *self.panic_always_at.lock().unwrap();
            if let Some(at) = always.filter(|at| records.iter().any(|r| r.offset == *at)) {
                guard.1 = true;
                panic!("fake step panics at {at} every time");
            }
            if self.failing.load(Ordering::SeqCst) {
                let _ = stop.clone().wait_for(|s| *s).await;
                self.interrupted.fetch_add(1, Ordering::SeqCst);
                guard.1 = true;
                return Err(Interrupted);
            }
            if !self.open.load(Ordering::SeqCst) {
                self.gate.acquire().await.expect("never closed").forget();
            }
            guard.1 = true;
            Ok(None)
        })
    }

    fn quarantine<'a>(
        &'a self,
        record: &'a SourceRecord,
        _panic: &'a str,
        _stop: &'a watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<(), Interrupted>> {
        Box::pin(async move {
            self.quarantined.lock().unwrap().push(record.offset);
            Ok(())
        })
    }
}

/// A consuming loop over a fake consumer and step, and the test's handles.
pub(super) struct Rig {
    pub feed: mpsc::UnboundedSender<Polled>,
    pub source: Arc<FakeSource>,
    pub step: Arc<FakeStep>,
    pub partitions: Partitions,
}

/// Topic `t`; batches of up to 2 records; a partition pauses at 4 records.
pub(super) const LIMITS: Limits =
    Limits { batch_records: 2, batch_bytes: 1 << 20, partition_records: 4, partition_bytes: 1 << 30 };

/// A rig and its loop (not yet running), revoked partitions draining for
/// at most `drain_timeout`.
pub(super) fn rig(drain_timeout: Duration) -> (Rig, Reader) {
    let (feed, rx) = mpsc::unbounded_channel();
    let source = Arc::new(FakeSource {
        feed: tokio::sync::Mutex::new(rx),
        seeked: feed.downgrade(),
        hold_seeks: AtomicBool::default(),
        held: Mutex::default(),
        calls: Mutex::default(),
    });
    let step = Arc::new(FakeStep::default());
    let (notes_tx, notes) = mpsc::unbounded_channel();
    let telemetry = Telemetry::new(Arc::new(Stats::default()), Duration::from_secs(60));
    let restart = RetryPolicy { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
    let spawner = Spawner {
        step: step.clone(),
        source: source.clone(),
        limits: LIMITS,
        notes: notes_tx.clone(),
        panic_hook: None,
        telemetry: telemetry.clone(),
    };
    let hands = Hands { source: source.clone(), spawner, limits: LIMITS, restart, quarantine_after: 3, telemetry };
    let partitions = Partitions::default();
    let reader =
        Reader { source: source.clone(), partitions: partitions.clone(), hands, notes, notes_tx, drain_timeout };
    (Rig { feed, source, step, partitions }, reader)
}

impl Rig {
    /// Assigns partitions `ps` of topic `t`.
    pub(super) fn assign(&self, ps: &[i32]) {
        self.feed.send(Polled::Assigned(ps.iter().map(|p| key(*p)).collect())).unwrap();
    }

    /// Delivers records `offsets` of partition `p`.
    pub(super) fn records(&self, p: i32, offsets: std::ops::Range<i64>) {
        for offset in offsets {
            self.feed
                .send(Polled::Record(SourceRecord { partition: p, ..crate::test_records::zeros(offset, 10) }))
                .unwrap();
        }
    }

    /// Starts revoking `ps`; returns where the answer arrives.
    pub(super) fn revoke(&self, ps: &[i32]) -> std_mpsc::Receiver<()> {
        let (revoking, answered) = Revoking::new(ps.iter().map(|p| key(*p)).collect());
        self.feed.send(Polled::Revoking(revoking)).unwrap();
        answered
    }

    /// The seeks held back so far take effect now.
    pub(super) fn seeks_take_effect(&self) {
        for key in self.source.held.lock().unwrap().drain(..) {
            self.feed.send(Polled::Seeked(key)).unwrap();
        }
    }

    /// Partition `p` as the loop sees it, if held.
    pub(super) fn view(&self, p: i32) -> Option<PartitionView> {
        self.partitions.view().into_iter().find(|v| v.partition == p)
    }

    /// Partition `p`'s state, if held.
    pub(super) fn state(&self, p: i32) -> Option<Lifecycle> {
        self.view(p).map(|v| v.state)
    }
}

/// Partition `p` of topic `t`.
pub(super) fn key(p: i32) -> PartitionKey {
    ("t".to_owned(), p)
}

/// Waits (in the runtime's time, which tests pause) until `condition`
/// holds; panics naming `what` after a simulated minute.
pub(super) async fn until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..6_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}
