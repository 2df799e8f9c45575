//! Waiting out transient failures: exponential backoff, forever, unless the
//! worker is asked to stop, in which case the work is abandoned unfinished
//! (its offsets are not stored, so it is redelivered later).

use backoff::backoff::Backoff;
use backoff::ExponentialBackoffBuilder;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// The worker was asked to stop while waiting; nothing was finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped while waiting for a transient failure to clear")]
pub struct Interrupted;

/// Backoff bounds.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
}

/// Runs `attempt` until it returns `Ok` or a permanent error; transient
/// errors (per `is_transient`) are logged, counted via `on_retry`, and retried.
pub async fn until_done<T, E, F, Fut>(
    policy: RetryPolicy,
    stop: &watch::Receiver<bool>,
    what: &str,
    is_transient: impl Fn(&E) -> bool,
    on_retry: impl Fn(),
    mut attempt: F,
) -> Result<Result<T, E>, Interrupted>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut backoff = ExponentialBackoffBuilder::new()
        .with_initial_interval(policy.initial)
        .with_max_interval(policy.max)
        .with_max_elapsed_time(None)
        .build();
    let mut stop = stop.clone();
    loop {
        match attempt().await {
            Err(e) if is_transient(&e) => {
                let wait = backoff.next_backoff().unwrap_or(policy.max);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "{what} failed; retrying.");
                on_retry();
                if *stop.borrow() {
                    return Err(Interrupted);
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => return Err(Interrupted),
                }
            }
            other => return Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let (_tx, rx) = watch::channel(false);
        let calls = AtomicU32::new(0);
        let retries = AtomicU32::new(0);
        let policy = RetryPolicy { initial: Duration::from_millis(10), max: Duration::from_secs(1) };
        let result = until_done(
            policy,
            &rx,
            "test",
            |_: &String| true,
            || {
                retries.fetch_add(1, Ordering::Relaxed);
            },
            || {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                async move {
                    if n < 5 {
                        Err(format!("down {n}"))
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(Ok(5)));
        assert_eq!(retries.load(Ordering::Relaxed), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_is_returned_at_once() {
        let (_tx, rx) = watch::channel(false);
        let policy = RetryPolicy { initial: Duration::from_millis(10), max: Duration::from_secs(1) };
        let result: Result<Result<(), String>, _> =
            until_done(policy, &rx, "test", |_| false, || {}, || async { Err("bad".to_owned()) }).await;
        assert_eq!(result, Ok(Err("bad".to_owned())));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_ends_the_wait_without_a_result() {
        let (tx, rx) = watch::channel(false);
        let policy = RetryPolicy { initial: Duration::from_secs(60), max: Duration::from_secs(60) };
        let waiting = tokio::spawn(async move {
            until_done(policy, &rx, "test", |_: &String| true, || {}, || async { Err::<(), _>("down".to_owned()) })
                .await
        });
        tokio::task::yield_now().await;
        tx.send(true).unwrap();
        assert_eq!(waiting.await.unwrap(), Err(Interrupted));
    }
}
