//! Counters of what the worker did, shared by the partition tasks and read by
//! the run summary (and, later, the metrics endpoint). Every record ends in
//! exactly one of applied, duplicate, skipped or dead-lettered.

use crate::dead_letter::DlqReason;
use crate::failure::Infra;
use crate::placement::Rule;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Live counters.
#[derive(Debug, Default)]
pub struct Stats {
    records: AtomicU64,
    records_applied: AtomicU64,
    records_duplicate: AtomicU64,
    records_skipped: AtomicU64,
    records_dead_lettered: AtomicU64,
    retries: AtomicU64,
    retries_by_cause: Mutex<BTreeMap<&'static str, u64>>,
    by_rule: Mutex<BTreeMap<&'static str, u64>>,
    by_reason: Mutex<BTreeMap<&'static str, u64>>,
    skipped_entries: Mutex<BTreeMap<&'static str, u64>>,
    reopens: AtomicU64,
    sender_refusals: AtomicU64,
    late_parent_merges: AtomicU64,
    links: Mutex<BTreeMap<String, u64>>,
    events_published: Mutex<BTreeMap<&'static str, u64>>,
    shared_committed: AtomicU64,
    shared_fell_back: AtomicU64,
    shared_batches: AtomicU64,
    shared_waiting: AtomicI64,
    failures: Mutex<BTreeMap<&'static str, u64>>,
    batch_splits: AtomicU64,
    dead_letters_truncated: AtomicU64,
    /// What waits out an infrastructure failure now (a partition, the
    /// consumer), with its cause and since when.
    waits: Mutex<BTreeMap<String, (Infra, Instant)>>,
}

/// How one record ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordEnd {
    Applied,
    Duplicate,
    Skipped,
    DeadLettered(DlqReason),
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    pub records: u64,
    pub records_applied: u64,
    pub records_duplicate: u64,
    pub records_skipped: u64,
    pub records_dead_lettered: u64,
    pub retries: u64,
    /// Retries by cause (`postgres`, `dead_letter_publish`).
    pub retries_by_cause: BTreeMap<&'static str, u64>,
    /// Messages by decision-table rule.
    pub messages_by_rule: BTreeMap<&'static str, u64>,
    /// Dead letters by reason code.
    pub dead_letters_by_reason: BTreeMap<&'static str, u64>,
    /// Items skipped (Messenger receipts and other entries, provider status
    /// reports, empty batches), by the kind's name: a closed set
    /// ([`crate::decode::SkipKind::label`]), unknown names counted as `other`.
    pub skipped_entries: BTreeMap<&'static str, u64>,
    /// Conversations reopened (R5).
    pub reopens: u64,
    /// Email replies whose sender the policy refused to join the
    /// conversation they referenced (placed by the next rules, linked).
    pub sender_refusals: u64,
    /// Conversations Switchboard started for replies that came before their
    /// parent, merged into the parent's conversation when it landed (R8).
    pub late_parent_merges: u64,
    /// Links inserted, by kind: `sibling` (R7), `related` (R8 and the sender policy), `follow_up`.
    pub links_made: BTreeMap<String, u64>,
    /// Conversation events the broker acknowledged, by type.
    pub events_published: BTreeMap<&'static str, u64>,
    /// Shared transactions (several partitions' batches in one), by
    /// outcome: `committed`, or `fell_back` (each batch then placed alone).
    pub shared_transactions: BTreeMap<&'static str, u64>,
    /// Partition batches committed in shared transactions.
    pub shared_batches: u64,
    /// Partition batches waiting now for a shared transaction to take them.
    pub shared_waiting: u64,
    /// Failures that were not the infrastructure's, by class: `retry`
    /// (cause unknown), `isolate` (the data), `panic`.
    pub failures_by_class: BTreeMap<&'static str, u64>,
    /// Failing batches split in two to isolate a record.
    pub batch_splits: u64,
    /// Dead letters the broker refused, replaced by truncated ones.
    pub dead_letters_truncated: u64,
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str, by: u64) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_default() += by;
    }
}

impl Stats {
    pub(crate) fn record_ended(&self, end: RecordEnd) {
        self.records.fetch_add(1, Ordering::Relaxed);
        let counter = match end {
            RecordEnd::Applied => &self.records_applied,
            RecordEnd::Duplicate => &self.records_duplicate,
            RecordEnd::Skipped => &self.records_skipped,
            RecordEnd::DeadLettered(reason) => {
                bump(&self.by_reason, reason.code(), 1);
                &self.records_dead_lettered
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn message_placed(&self, rule: Rule) {
        bump(&self.by_rule, rule.as_str(), 1);
    }

    /// One skipped item, under its kind's name. Names come from a closed
    /// set (the decoder's [`crate::decode::SkipKind`]); a name outside it
    /// counts as `other`, so no input adds a metric series.
    pub(crate) fn entry_skipped(&self, kind: &str) {
        bump(&self.skipped_entries, crate::decode::SkipKind::label(kind), 1);
    }

    /// A transient failure is being waited out; `cause` names what failed
    /// (a short stable label: `postgres`, `dead_letter_publish`).
    pub fn retried(&self, cause: &'static str) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        bump(&self.retries_by_cause, cause, 1);
    }

    /// Events of this type the broker acknowledged.
    pub(crate) fn events_published(&self, kind: crate::events::EventType, n: u64) {
        bump(&self.events_published, kind.as_str(), n);
    }

    /// What a committed batch did besides placing messages.
    pub(crate) fn batch_effects(&self, effects: &crate::store::BatchEffects) {
        self.reopens.fetch_add(effects.reopens, Ordering::Relaxed);
        self.sender_refusals.fetch_add(effects.sender_refusals, Ordering::Relaxed);
        self.late_parent_merges.fetch_add(effects.late_parent_merges, Ordering::Relaxed);
        if let Ok(mut links) = self.links.lock() {
            for (kind, n) in &effects.links {
                *links.entry(kind.clone()).or_default() += n;
            }
        }
    }

    /// A shared transaction of `batches` partition batches ended.
    pub(crate) fn shared_transaction(&self, batches: usize, committed: bool) {
        if committed {
            self.shared_committed.fetch_add(1, Ordering::Relaxed);
            self.shared_batches.fetch_add(batches as u64, Ordering::Relaxed);
        } else {
            self.shared_fell_back.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Batches waiting for a shared transaction went up or down by `by`.
    pub(crate) fn shared_waiting(&self, by: i64) {
        self.shared_waiting.fetch_add(by, Ordering::Relaxed);
    }

    /// A failure that was not the infrastructure's, by class (`retry`,
    /// `isolate`, `panic`: a closed set).
    pub fn failure(&self, class: &'static str) {
        bump(&self.failures, class, 1);
    }

    /// A failing batch was split `n` times to isolate its poison records.
    pub fn batch_splits(&self, n: u32) {
        self.batch_splits.fetch_add(u64::from(n), Ordering::Relaxed);
    }

    /// A dead letter was replaced by a truncated one.
    pub(crate) fn dead_letter_truncated(&self) {
        self.dead_letters_truncated.fetch_add(1, Ordering::Relaxed);
    }

    /// `who` (`partition topic/partition`, `the Kafka consumer`) waits out
    /// an infrastructure failure (`Some`), or no longer does (`None`).
    pub fn waiting(&self, who: &str, cause: Option<Infra>) {
        let partition = who;
        if let Ok(mut waits) = self.waits.lock() {
            match cause {
                // The first cause and its start stay while the wait lasts.
                Some(cause) => {
                    waits.entry(partition.to_owned()).or_insert((cause, Instant::now())).0 = cause;
                }
                None => {
                    waits.remove(partition);
                }
            }
        }
    }

    /// The partitions waiting out an infrastructure failure now: each with
    /// its cause and for how long.
    pub fn waits(&self) -> Vec<(String, Infra, Duration)> {
        let waits = self.waits.lock().map(|w| w.clone()).unwrap_or_default();
        waits.into_iter().map(|(p, (cause, since))| (p, cause, since.elapsed())).collect()
    }

    pub fn snapshot(&self) -> Snapshot {
        let read = |m: &Mutex<BTreeMap<&'static str, u64>>| m.lock().map(|m| m.clone()).unwrap_or_default();
        Snapshot {
            records: self.records.load(Ordering::Relaxed),
            records_applied: self.records_applied.load(Ordering::Relaxed),
            records_duplicate: self.records_duplicate.load(Ordering::Relaxed),
            records_skipped: self.records_skipped.load(Ordering::Relaxed),
            records_dead_lettered: self.records_dead_lettered.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            retries_by_cause: read(&self.retries_by_cause),
            messages_by_rule: read(&self.by_rule),
            dead_letters_by_reason: read(&self.by_reason),
            skipped_entries: read(&self.skipped_entries),
            reopens: self.reopens.load(Ordering::Relaxed),
            sender_refusals: self.sender_refusals.load(Ordering::Relaxed),
            late_parent_merges: self.late_parent_merges.load(Ordering::Relaxed),
            links_made: self.links.lock().map(|m| m.clone()).unwrap_or_default(),
            events_published: read(&self.events_published),
            // Both outcomes always, so a dashboard sees zeros.
            shared_transactions: [
                ("committed", self.shared_committed.load(Ordering::Relaxed)),
                ("fell_back", self.shared_fell_back.load(Ordering::Relaxed)),
            ]
            .into(),
            shared_batches: self.shared_batches.load(Ordering::Relaxed),
            shared_waiting: self.shared_waiting.load(Ordering::Relaxed).max(0) as u64,
            failures_by_class: read(&self.failures),
            batch_splits: self.batch_splits.load(Ordering::Relaxed),
            dead_letters_truncated: self.dead_letters_truncated.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Stats;

    #[test]
    fn skipped_entries_under_names_outside_the_closed_set_count_as_other() {
        let stats = Stats::default();
        for name in ["standby", "echo", "x1", "x2", "Robert'); DROP", "other"] {
            stats.entry_skipped(name);
        }
        let counted: Vec<(&str, u64)> = stats.snapshot().skipped_entries.into_iter().collect();
        assert_eq!(counted, [("echo", 1), ("other", 4), ("standby", 1)]);
    }
}
