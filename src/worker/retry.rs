//! Trying work again, as the failure policy ([`crate::failure`]) says: the
//! infrastructure's failures are waited out with exponential backoff and
//! without end (unless the worker is asked to stop: then the work is
//! abandoned unfinished and its offsets are not stored, so it is
//! redelivered); any other failure is tried a bounded number of times and
//! then handed back, for the caller to isolate.

use crate::failure::{Infra, Verdict};
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

/// One failed attempt, as the policy classed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Failed {
    pub verdict: Verdict,
    /// For a person: the service's own words, or the panic's message.
    pub detail: String,
    /// The attempt panicked (dead-lettered as `panicked`, not
    /// `rejected_by_store`).
    pub panicked: bool,
}

/// What the attempts loop reports while it runs.
pub(super) trait Watcher {
    /// The infrastructure failed (`Some`) and the work waits, or the wait
    /// is over (`None`).
    fn waiting(&self, cause: Option<Infra>);
    /// A failure that was not the infrastructure's; `attempt` of `limit`.
    fn failed(&self, failed: &Failed, attempt: u32, limit: u32);
}

/// Runs `attempt` until it succeeds, waiting out the infrastructure's
/// failures for as long as they last, and returning any other failure
/// once it has happened `limit` times (an [`Verdict::Isolate`] one at once).
pub(super) async fn attempts<T, F, Fut>(
    policy: RetryPolicy,
    stop: &watch::Receiver<bool>,
    limit: u32,
    watcher: &impl Watcher,
    mut attempt: F,
) -> Result<Result<T, Failed>, Interrupted>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failed>>,
{
    let mut backoff = ExponentialBackoffBuilder::new()
        .with_initial_interval(policy.initial)
        .with_max_interval(policy.max)
        .with_max_elapsed_time(None)
        .build();
    let mut stop = stop.clone();
    let mut failures = 0;
    let mut waiting = false;
    // Whatever ends or interrupts a wait reports it over.
    let wait_over = |waiting: &mut bool| {
        if std::mem::take(waiting) {
            watcher.waiting(None);
        }
    };
    loop {
        let failed = match attempt().await {
            Ok(done) => {
                wait_over(&mut waiting);
                return Ok(Ok(done));
            }
            Err(failed) => failed,
        };
        match failed.verdict {
            Verdict::Wait(cause) => {
                waiting = true;
                watcher.waiting(Some(cause));
            }
            Verdict::Isolate => {
                wait_over(&mut waiting);
                return Ok(Err(failed));
            }
            Verdict::Retry => {
                wait_over(&mut waiting);
                failures += 1;
                watcher.failed(&failed, failures, limit);
                if failures >= limit {
                    return Ok(Err(failed));
                }
            }
        }
        let wait = backoff.next_backoff().unwrap_or(policy.max);
        tracing::debug!(error = %failed.detail, retry_in_ms = wait.as_millis() as u64, "Trying again after a pause.");
        let interrupted = *stop.borrow()
            || tokio::select! {
                _ = tokio::time::sleep(wait) => false,
                _ = stop.wait_for(|s| *s) => true,
            };
        if interrupted {
            wait_over(&mut waiting);
            return Err(Interrupted);
        }
    }
}

#[cfg(test)]
mod tests;
