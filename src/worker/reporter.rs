//! What the retry loop reports, as counters (`/metrics`, `/readyz`) and
//! log lines: waits on the infrastructure per partition, and failures that
//! are not the infrastructure's.

use super::retry::{Failed, Watcher};
use crate::failure::Infra;
use crate::stats::Stats;

/// Reports a partition's waits and failures to the counters and the logs.
pub(super) struct Reporter<'a> {
    pub stats: &'a Stats,
    /// `topic/partition`.
    pub partition: String,
    /// What is being tried, for the logs and the retry counter:
    /// `postgres` or `dead_letter_publish`.
    pub cause: &'static str,
}

impl Watcher for Reporter<'_> {
    fn waiting(&self, cause: Option<Infra>) {
        self.stats.waiting(&format!("partition {}", self.partition), cause);
        if cause.is_some() {
            self.stats.retried(self.cause);
        }
    }

    fn tell(&self, cause: Infra, detail: &str) {
        tracing::warn!(
            partition = %self.partition,
            infrastructure = cause.label(),
            error = detail,
            "{}: {}; the partition waits (told again at most once a minute while it lasts).",
            self.what(),
            cause.sentence()
        );
    }

    fn failed(&self, failed: &Failed, attempt: u32, limit: u32) {
        self.stats.failure(if failed.panicked { "panic" } else { failed.verdict.label() });
        let next = if attempt < limit { "trying again" } else { "isolating the record that causes it" };
        tracing::warn!(error = %failed.detail, attempt, attempts = limit, "{} failed; {next}.", self.what());
    }
}

impl Reporter<'_> {
    fn what(&self) -> &'static str {
        match self.cause {
            "dead_letter_publish" => "Publishing a dead letter",
            _ => "Placing a batch",
        }
    }
}
