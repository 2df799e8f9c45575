use super::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Records what the loop reported.
#[derive(Default)]
struct Seen {
    waits: Mutex<Vec<Option<Infra>>>,
    told: Mutex<Vec<Infra>>,
    failures: Mutex<Vec<(u32, u32)>>,
}

impl Watcher for Seen {
    fn waiting(&self, cause: Option<Infra>) {
        self.waits.lock().unwrap().push(cause);
    }
    fn tell(&self, cause: Infra, _: &str) {
        self.told.lock().unwrap().push(cause);
    }
    fn failed(&self, _: &Failed, attempt: u32, limit: u32) {
        self.failures.lock().unwrap().push((attempt, limit));
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy { initial: Duration::from_millis(10), max: Duration::from_secs(1) }
}

fn failed(verdict: Verdict) -> Failed {
    Failed { verdict, detail: format!("{verdict:?}"), panicked: false }
}

#[tokio::test(start_paused = true)]
async fn the_infrastructures_failures_are_waited_out_without_counting_attempts() {
    let (_tx, rx) = watch::channel(false);
    let calls = AtomicU32::new(0);
    let seen = Seen::default();
    let result = attempts(policy(), &rx, 2, &seen, || {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move {
            if n < 50 {
                Err(failed(Verdict::Wait(Infra::Unreachable)))
            } else {
                Ok(n)
            }
        }
    })
    .await;
    assert_eq!(result, Ok(Ok(50)), "fifty waits, far past the limit of 2, then success");
    let waits = seen.waits.lock().unwrap();
    assert_eq!(waits.len(), 51);
    assert_eq!(waits.last(), Some(&None), "the wait is reported over");
    assert!(seen.failures.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn other_failures_are_tried_up_to_the_limit_then_handed_back() {
    let (_tx, rx) = watch::channel(false);
    let calls = AtomicU32::new(0);
    let seen = Seen::default();
    let result: Result<Result<(), Failed>, _> = attempts(policy(), &rx, 3, &seen, || {
        calls.fetch_add(1, Ordering::Relaxed);
        async { Err(failed(Verdict::Retry)) }
    })
    .await;
    assert_eq!(result, Ok(Err(failed(Verdict::Retry))));
    assert_eq!(calls.load(Ordering::Relaxed), 3);
    assert_eq!(*seen.failures.lock().unwrap(), [(1, 3), (2, 3), (3, 3)]);
}

#[tokio::test(start_paused = true)]
async fn a_passing_failure_below_the_limit_is_ridden_out() {
    let (_tx, rx) = watch::channel(false);
    let calls = AtomicU32::new(0);
    let result = attempts(policy(), &rx, 3, &Seen::default(), || {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move {
            if n < 2 {
                Err(failed(Verdict::Retry))
            } else {
                Ok(n)
            }
        }
    })
    .await;
    assert_eq!(result, Ok(Ok(2)));
}

#[tokio::test(start_paused = true)]
async fn the_inputs_own_failure_is_handed_back_at_once() {
    let (_tx, rx) = watch::channel(false);
    let calls = AtomicU32::new(0);
    let result: Result<Result<(), Failed>, _> = attempts(policy(), &rx, 3, &Seen::default(), || {
        calls.fetch_add(1, Ordering::Relaxed);
        async { Err(failed(Verdict::Isolate)) }
    })
    .await;
    assert_eq!(result, Ok(Err(failed(Verdict::Isolate))));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stop_request_ends_the_wait_without_a_result() {
    let (tx, rx) = watch::channel(false);
    let slow = RetryPolicy { initial: Duration::from_secs(60), max: Duration::from_secs(60) };
    let waiting = tokio::spawn(async move {
        attempts(slow, &rx, 3, &Seen::default(), || async { Err::<(), _>(failed(Verdict::Wait(Infra::Failover))) })
            .await
    });
    tokio::task::yield_now().await;
    tx.send(true).unwrap();
    assert_eq!(waiting.await.unwrap(), Err(Interrupted));
}

#[tokio::test(start_paused = true)]
async fn a_wait_is_reported_over_when_a_stop_interrupts_it() {
    let (tx, rx) = watch::channel(false);
    let seen = std::sync::Arc::new(Seen::default());
    let watching = seen.clone();
    let waiting = tokio::spawn(async move {
        attempts(policy(), &rx, 3, watching.as_ref(), || async { Err::<(), _>(failed(Verdict::Wait(Infra::Refused))) })
            .await
    });
    while seen.waits.lock().unwrap().len() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tx.send(true).unwrap();
    assert_eq!(waiting.await.unwrap(), Err(Interrupted));
    assert_eq!(seen.waits.lock().unwrap().last(), Some(&None), "a stopped partition no longer waits");
}

#[tokio::test(start_paused = true)]
async fn a_wait_is_reported_over_when_the_work_is_abandoned_mid_wait() {
    // A partition abandoned at its drain deadline, or lost, drops the
    // future while it waits: /readyz must not keep naming it.
    let (_tx, rx) = watch::channel(false);
    let seen = Seen::default();
    let waiting =
        attempts(policy(), &rx, 3, &seen, || async { Err::<(), _>(failed(Verdict::Wait(Infra::Unreachable))) });
    let abandoned = tokio::time::timeout(Duration::from_secs(5), waiting).await;
    assert!(abandoned.is_err(), "it was still waiting");
    let waits = seen.waits.lock().unwrap();
    assert!(waits.len() > 3, "it waited: {waits:?}");
    assert_eq!(waits.last(), Some(&None), "dropping the wait reports it over");
}

#[tokio::test(start_paused = true)]
async fn a_wait_is_told_when_it_begins_when_its_cause_changes_and_at_most_once_a_minute() {
    let (_tx, rx) = watch::channel(false);
    let calls = AtomicU32::new(0);
    let seen = Seen::default();
    let started = tokio::time::Instant::now();
    let result = attempts(policy(), &rx, 2, &seen, || {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move {
            match n {
                0..200 => Err(failed(Verdict::Wait(Infra::Refused))),
                200..210 => Err(failed(Verdict::Wait(Infra::Unreachable))),
                _ => Ok(n),
            }
        }
    })
    .await;
    assert_eq!(result, Ok(Ok(210)));
    let minutes = started.elapsed().as_secs() / 60;
    let told = seen.told.lock().unwrap().clone();
    let refused = told.iter().filter(|c| **c == Infra::Refused).count() as u64;
    assert!(minutes >= 2, "200 attempts at up to 1 s apart span minutes: {minutes}");
    assert!((1..=minutes + 1).contains(&refused), "told {refused} times in {minutes} minutes, not per attempt");
    assert_eq!(told.last(), Some(&Infra::Unreachable), "a new cause is told at once");
    assert_eq!(told.iter().filter(|c| **c == Infra::Unreachable).count(), 1);
}
