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
    /// The first wait.
    pub initial: Duration,
    /// The longest wait; the waits grow to it and stay there.
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
    /// Tells the operator about a wait: when it begins, when its cause
    /// changes, and at most every [`WAIT_LOG_EVERY`] while it lasts, never
    /// per attempt (a revoked grant would otherwise log on every backoff).
    fn tell(&self, _cause: Infra, _detail: &str) {}
    /// A failure that was not the infrastructure's; `attempt` of `limit`.
    fn failed(&self, failed: &Failed, attempt: u32, limit: u32);
}

/// How often a wait that goes on is told again.
pub(super) const WAIT_LOG_EVERY: Duration = Duration::from_secs(60);

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
    // Whatever ends the wait reports it over: success, a failure handed
    // back, a stop, and the future being dropped (a partition abandoned at
    // a drain deadline, or lost), which is why this is a guard.
    let mut wait = WaitGuard { watcher, waiting: false, told: None };
    loop {
        let failed = match attempt().await {
            Ok(done) => {
                wait.over();
                return Ok(Ok(done));
            }
            Err(failed) => failed,
        };
        match failed.verdict {
            Verdict::Wait(cause) => wait.waiting_on(cause, &failed.detail),
            Verdict::Isolate => {
                wait.over();
                return Ok(Err(failed));
            }
            Verdict::Retry => {
                wait.over();
                failures += 1;
                watcher.failed(&failed, failures, limit);
                if failures >= limit {
                    return Ok(Err(failed));
                }
            }
        }
        let pause = backoff.next_backoff().unwrap_or(policy.max);
        tracing::debug!(error = %failed.detail, retry_in_ms = pause.as_millis() as u64, "Trying again after a pause.");
        let interrupted = *stop.borrow()
            || tokio::select! {
                _ = tokio::time::sleep(pause) => false,
                _ = stop.wait_for(|s| *s) => true,
            };
        if interrupted {
            return Err(Interrupted);
        }
    }
}

/// Reports an infrastructure wait to the watcher while it lasts, and over
/// when dropped.
struct WaitGuard<'a, W: Watcher> {
    watcher: &'a W,
    waiting: bool,
    /// The cause last told, and when.
    told: Option<(Infra, tokio::time::Instant)>,
}

impl<W: Watcher> WaitGuard<'_, W> {
    fn waiting_on(&mut self, cause: Infra, detail: &str) {
        self.waiting = true;
        self.watcher.waiting(Some(cause));
        let now = tokio::time::Instant::now();
        let due = self.told.is_none_or(|(told, at)| told != cause || now.duration_since(at) >= WAIT_LOG_EVERY);
        if due {
            self.told = Some((cause, now));
            self.watcher.tell(cause, detail);
        }
    }

    fn over(&mut self) {
        self.told = None;
        if std::mem::take(&mut self.waiting) {
            self.watcher.waiting(None);
        }
    }
}

impl<W: Watcher> Drop for WaitGuard<'_, W> {
    fn drop(&mut self) {
        self.over();
    }
}

#[cfg(test)]
mod tests;
