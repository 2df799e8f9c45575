//! The consuming loop, flow control, rebalances and shutdown, driven by a
//! scripted consumer ([`super::fake`]): every transition of a partition,
//! deterministic, with the runtime's clock paused.

use super::fake::{key, rig, until, Call, Rig};
use super::lifecycle::Lifecycle;
use super::reader::{ReadEnd, Reader};
use crate::kafka::{PartitionKey, Polled};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs the loop until `stop` fires, then finishes within `shutdown_timeout`.
fn start(
    mut reader: Reader,
    shutdown_timeout: Duration,
) -> (oneshot::Sender<()>, JoinHandle<(ReadEnd, Vec<PartitionKey>)>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(async move {
        let ended = reader
            .run(None, async {
                let _ = stopped.await;
            })
            .await;
        (ended, reader.finish(shutdown_timeout).await)
    });
    (stop, run)
}

fn stores(rig: &Rig, p: i32) -> Vec<i64> {
    rig.source
        .calls()
        .into_iter()
        .filter_map(|c| if let Call::Store(q, o) = c { (q == p).then_some(o) } else { None })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn records_flow_to_their_task_which_stores_each_batchs_last_offset() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.step.open();
    rig.assign(&[0]);
    until("the partition is assigned", || rig.state(0) == Some(Lifecycle::Assigned)).await;
    rig.records(0, 0..5);
    until("every record is placed", || rig.view(0).and_then(|v| v.done_up_to) == Some(5)).await;
    assert_eq!(stores(&rig, 0), [1, 3, 4], "batches of two, in offset order");
    assert_eq!(rig.state(0), Some(Lifecycle::Reading));
}

#[tokio::test(start_paused = true)]
async fn a_record_of_a_partition_not_assigned_starts_nothing() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.step.open();
    rig.records(7, 0..3);
    rig.assign(&[0]);
    until("the assignment is seen", || rig.state(0).is_some()).await;
    assert!(rig.view(7).is_none(), "no task for a partition given away");
    assert_eq!(rig.step.started.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_buffer_pauses_only_its_partition_and_resumes_it_with_a_seek_once_drained() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.assign(&[0, 1]);
    rig.records(0, 0..6);
    until("partition 0 pauses", || rig.state(0) == Some(Lifecycle::Paused)).await;
    assert_eq!(rig.source.calls(), [Call::Pause(0)], "paused at four records held");
    assert_eq!(rig.view(0).unwrap().buffered_records, 6, "records fetched before the pause are kept");

    rig.records(1, 0..1);
    until("partition 1 still reads", || rig.state(1) == Some(Lifecycle::Reading)).await;
    rig.step.release(3);
    until("partition 0 resumes", || rig.state(0) == Some(Lifecycle::Reading)).await;
    let calls = rig.source.calls();
    let resumed = calls.iter().position(|c| *c == Call::Resume(0)).expect("resumed");
    assert_eq!(calls[resumed - 1], Call::Seek(0, 6), "the next fetch starts after the last buffered record");
    assert!(rig.view(0).unwrap().buffered_records <= 2, "drained to half before resuming");
}

#[tokio::test(start_paused = true)]
async fn records_delivered_again_after_a_seek_are_not_placed_twice() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.step.open();
    rig.assign(&[0]);
    rig.records(0, 0..3);
    rig.records(0, 1..4);
    until("every record is placed", || rig.view(0).and_then(|v| v.done_up_to) == Some(4)).await;
    assert_eq!(stores(&rig, 0), [1, 3], "offsets 1 and 2 came twice and were placed once");
}

#[tokio::test(start_paused = true)]
async fn a_revoke_waits_for_the_batch_in_progress_while_other_partitions_go_on() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.assign(&[0, 1]);
    rig.records(0, 0..4);
    until("partition 0's batch is in progress", || rig.step.started.load(Ordering::SeqCst) == 1).await;
    let answered = rig.revoke(&[0]);
    until("partition 0 drains", || rig.state(0) == Some(Lifecycle::Draining)).await;
    assert_eq!(rig.view(0).unwrap().buffered_records, 2, "the queue is dropped, the batch in hand is not");
    assert!(answered.try_recv().is_err(), "no answer while the batch runs");

    // The loop is not blocked: partition 1's news is served meanwhile.
    rig.feed.send(Polled::Assigned(vec![key(2)])).unwrap();
    until("the loop still serves the consumer", || rig.state(2).is_some()).await;

    rig.step.release(1);
    until("the revoke is answered", || answered.try_recv().is_ok()).await;
    assert_eq!(stores(&rig, 0), [1], "the finished batch's offset is stored before the answer");
    assert!(rig.view(0).is_none(), "given away and forgotten");
    assert_eq!(rig.step.started.load(Ordering::SeqCst), 1, "the queued records were left to the new owner");
}

#[tokio::test(start_paused = true)]
async fn a_revoke_during_a_failing_batch_abandons_it_at_the_drain_timeout_and_stores_nothing() {
    let drain_timeout = Duration::from_secs(30);
    let (rig, reader) = rig(drain_timeout);
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.step.failing.store(true, Ordering::SeqCst);
    rig.assign(&[0]);
    rig.records(0, 0..2);
    until("the batch waits out its failure", || rig.step.started.load(Ordering::SeqCst) == 1).await;
    let revoked_at = tokio::time::Instant::now();
    let answered = rig.revoke(&[0]);
    until("the revoke is answered", || answered.try_recv().is_ok()).await;
    assert!(revoked_at.elapsed() >= drain_timeout, "answered after {:?}", revoked_at.elapsed());
    assert_eq!(rig.step.interrupted.load(Ordering::SeqCst), 0, "a revoke lets the batch try until the deadline");
    until("the batch is dropped unfinished", || rig.step.cancelled.load(Ordering::SeqCst) == 1).await;
    assert!(stores(&rig, 0).is_empty(), "nothing stored: the new owner places the batch");
    assert!(rig.view(0).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_revoke_of_an_idle_partition_is_answered_at_once() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.assign(&[0, 1]);
    let answered = rig.revoke(&[0, 1]);
    until("the revoke is answered", || answered.try_recv().is_ok()).await;
    assert!(rig.partitions.view().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_lost_partition_abandons_its_batch_at_once() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.assign(&[0]);
    rig.records(0, 0..2);
    until("the batch is in progress", || rig.step.started.load(Ordering::SeqCst) == 1).await;
    rig.feed.send(Polled::Lost(vec![key(0)])).unwrap();
    until("the batch is dropped unfinished", || rig.step.cancelled.load(Ordering::SeqCst) == 1).await;
    assert!(rig.view(0).is_none());
    assert!(stores(&rig, 0).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_is_restarted_from_the_last_stored_offset() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.step.open();
    *rig.step.panic_at.lock().unwrap() = Some(3);
    rig.assign(&[0]);
    rig.records(0, 0..6);
    until("the task restarts", || rig.state(0) == Some(Lifecycle::Restarting)).await;
    assert!(rig.source.calls().contains(&Call::Seek(0, 2)), "read again from offset 2, the failed batch's first");
    assert_eq!(rig.view(0).unwrap().restarts, 1);
    rig.records(0, 2..6);
    until("the restarted task placed everything", || rig.view(0).and_then(|v| v.done_up_to) == Some(6)).await;
    assert_eq!(rig.state(0), Some(Lifecycle::Reading));
    assert_eq!(stores(&rig, 0), [1, 3, 5], "each batch stored once");
}

#[tokio::test(start_paused = true)]
async fn a_record_the_task_panics_on_every_time_is_dead_lettered_after_three_restarts() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.step.open();
    *rig.step.panic_always_at.lock().unwrap() = Some(3);
    rig.assign(&[0]);
    rig.records(0, 0..6);
    for restarts in 1..=3 {
        until("the task restarts", || rig.view(0).is_some_and(|v| v.restarts == restarts)).await;
        rig.records(0, 2..6);
    }
    until("everything past the poison is placed", || rig.view(0).and_then(|v| v.done_up_to) == Some(6)).await;
    assert_eq!(*rig.step.quarantined.lock().unwrap(), [3], "only the record that panics is dead-lettered");
    assert_eq!(rig.view(0).unwrap().restarts, 3, "bounded: no fourth restart");
    assert_eq!(stores(&rig, 0), [1, 3, 5], "offset 2 placed alone, 3 dead-lettered, then on as before");
}

#[tokio::test(start_paused = true)]
async fn records_fetched_before_a_seek_took_effect_are_dropped_and_read_again_after_it() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, _run) = start(reader, Duration::from_secs(5));
    rig.step.open();
    rig.source.hold_seeks.store(true, Ordering::SeqCst);
    *rig.step.panic_at.lock().unwrap() = Some(1);
    rig.assign(&[0]);
    rig.records(0, 0..2);
    until("the task restarts", || rig.state(0) == Some(Lifecycle::Restarting)).await;
    assert!(rig.source.calls().contains(&Call::Seek(0, 0)));
    // Fetched from the old position before the seek back to 0 took effect:
    // taking them would skip offsets 0 and 1.
    rig.records(0, 2..4);
    rig.seeks_take_effect();
    rig.records(0, 0..4);
    until("everything is placed", || rig.view(0).and_then(|v| v.done_up_to) == Some(4)).await;
    assert_eq!(stores(&rig, 0), [1, 3], "in offset order, nothing skipped");
}

#[tokio::test(start_paused = true)]
async fn a_stop_interrupts_a_batch_waiting_out_a_failure_and_stores_nothing() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (stop, run) = start(reader, Duration::from_secs(5));
    rig.step.failing.store(true, Ordering::SeqCst);
    rig.assign(&[0]);
    rig.records(0, 0..2);
    until("the batch waits out its failure", || rig.step.started.load(Ordering::SeqCst) == 1).await;
    stop.send(()).unwrap();
    let (ended, late) = run.await.unwrap();
    assert_eq!((ended, late), (ReadEnd::Stopped, vec![]), "the interrupted task ended in time");
    assert_eq!(rig.step.interrupted.load(Ordering::SeqCst), 1);
    assert!(stores(&rig, 0).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stop_finishes_the_batch_in_hand_and_abandons_one_past_the_deadline() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (stop, run) = start(reader, Duration::from_secs(5));
    rig.assign(&[0, 1]);
    rig.records(0, 0..2);
    rig.records(1, 0..2);
    until("both batches are in progress", || rig.step.started.load(Ordering::SeqCst) == 2).await;
    rig.step.release(1);
    stop.send(()).unwrap();
    let (_, late) = run.await.unwrap();
    assert_eq!(late.len(), 1, "one batch finished, the other was still waiting at the deadline");
    let finished = if stores(&rig, 0).is_empty() { 1 } else { 0 };
    assert_eq!(stores(&rig, finished), [1]);
    assert!(late[0] != key(finished) && stores(&rig, late[0].1).is_empty());
    until("the late batch is dropped unfinished", || rig.step.cancelled.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test(start_paused = true)]
async fn the_loop_ends_when_the_consumer_closes() {
    let (rig, reader) = rig(Duration::from_secs(30));
    let (_stop, run) = start(reader, Duration::from_secs(5));
    drop(rig.feed);
    assert_eq!(run.await.unwrap().0, ReadEnd::Stopped);
}
