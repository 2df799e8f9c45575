//! One step of a partition's work: a batch of records in offset order is
//! decoded, placed in one transaction (shared with other partitions' small
//! batches when they are ready at once, [`super::coalesce`]), and what
//! cannot be placed is dead-lettered. When the step returns `Ok`, every
//! record of the batch is durably applied or on the dead-letter topic, and
//! its offset may be stored.
//!
//! Failures follow the one failure policy ([`crate::failure`]): the
//! infrastructure's are waited out; any other failure of the batch, a panic
//! included, is tried `worker.failure_attempts` times, then the batch is
//! split until the record that causes it is found ([`super::isolate`]);
//! that record alone is dead-lettered (`rejected_by_store` or `panicked`)
//! and the others are placed.
//!
//! A record carrying several messages of which some are invalid (contract
//! section 5) is both: its valid messages are placed with the batch, then
//! the record is dead-lettered whole, as received, and counted as a dead
//! letter. Placing first means a redrive finds those messages as duplicates.

use super::coalesce::Coalescer;
use super::isolate;
use super::lock_budget::{self, LOCKS_PER_RECORD};
use super::reporter::Reporter;
use super::retry::{self, Failed, Interrupted, RetryPolicy};
use super::test_hooks::PanicPlacing;
use crate::dead_letter::{DeadLetter, DlqReason};
use crate::decode::{self, DecodeError, Decoded};
use crate::failure::{self, Verdict};
use crate::kafka::Publisher;
use crate::placement::Policy;
use crate::record::SourceRecord;
use crate::stats::{RecordEnd, Stats};
use crate::store::{self, Item, Outcome, SourceRef, Store};
use crate::telemetry::record_log;
use futures::FutureExt as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument as _;

/// What a batch step needs; shared by all partition tasks.
pub struct Pipeline {
    /// Where batches are placed.
    pub store: Store,
    /// Where dead letters go.
    pub publisher: Publisher,
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// The decision table's settings.
    pub policy: Policy,
    /// Larger records are dead-lettered `too_large` undecoded.
    pub max_record_bytes: usize,
    /// The backoff between tries.
    pub retry: RetryPolicy,
    /// Tries of a batch, and of a lone record, that fails for a reason that
    /// is not the infrastructure's, before it is split or dead-lettered.
    pub failure_attempts: u32,
    /// Advisory locks one transaction may take (`lock_budget`): a batch
    /// whose records need more is placed in several transactions, in order.
    pub locks_per_transaction: u64,
    pub stats: Arc<Stats>,
    /// Shares transactions between partitions whose batches are ready at
    /// once ([`super::coalesce`]); `None`: every batch alone.
    pub coalescer: Option<Coalescer>,
    /// Tests only (`worker.test_panic_placing`).
    pub(super) panic_placing: Option<PanicPlacing>,
}

/// A record that decoded; its messages are `items[range]` of the batch.
struct Decodable<'a> {
    record: &'a SourceRecord,
    range: std::ops::Range<usize>,
    skipped: Vec<crate::decode::SkipKind>,
    /// Set when some items of the record are invalid: the record is
    /// dead-lettered whole once its valid messages are placed.
    invalid: Option<DecodeError>,
}

impl Pipeline {
    /// Processes `records` (one partition, offset order, `bytes` as the
    /// buffer counts them). Returns how long the batch waited for a shared
    /// transaction's lane (`None`: placed alone), or `Err(Interrupted)`
    /// only when asked to stop while waiting out a failure; then nothing
    /// may be marked done.
    pub async fn process(
        &self,
        records: &[SourceRecord],
        bytes: usize,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<Duration>, Interrupted> {
        let mut dead = Vec::new();
        let mut decodable = Vec::new();
        let mut items = Vec::new();
        for record in records {
            match self.decode(record) {
                Ok(decoded) => decodable.push(self.prepare(record, decoded, &mut items)),
                Err(letter) => dead.push((record.offset, letter)),
            }
        }

        let items = Arc::new(items);
        // The test hook panics only where this pipeline places; and a batch
        // that needs more locks than its records would on average (emails
        // naming many ids) is not shared: it may need several transactions.
        let hooked = self.panic_placing.as_ref().is_some_and(|hook| hook.holds(items.iter()));
        // Each message's advisory locks, counted once for the batch.
        let locks: Vec<u64> = items.iter().map(|i| store::locks_needed(&i.message)).collect();
        let heavy = locks.iter().sum::<u64>() > LOCKS_PER_RECORD * records.len() as u64;
        let shared = match &self.coalescer {
            Some(coalescer) if !items.is_empty() && !hooked && !heavy => {
                coalescer.place(items.clone(), records.len(), bytes).await
            }
            _ => None,
        };
        let lane_wait = shared.as_ref().map(|s| s.lane_wait);
        let ends = match shared {
            Some(shared) => {
                let mut outcomes = shared.outcomes.into_iter();
                decodable.iter().map(|d| Ok(outcomes.by_ref().take(d.range.len()).collect())).collect()
            }
            None => self.settle(&decodable, &items, &locks, stop).await?,
        };
        let mut record_ends = Vec::new();
        for (d, end) in decodable.iter().zip(ends) {
            match end {
                Ok(outcomes) => {
                    record_ends.extend(self.account(d, &outcomes));
                    dead.extend(partly_invalid(d).map(|l| (d.record.offset, l)));
                }
                Err(failed) => dead.push((d.record.offset, isolated(d, &failed))),
            }
        }
        // Dead letters go out in the order of their records.
        dead.sort_by_key(|(offset, _)| *offset);
        for (_, letter) in &dead {
            self.dead_letter(letter, stop).await?;
        }
        // A record dead-lettered for invalid items ends as a dead letter,
        // not also as applied: every record ends exactly one way.
        for end in record_ends {
            self.stats.record_ended(end);
        }
        for (_, letter) in &dead {
            self.stats.record_ended(RecordEnd::DeadLettered(letter.reason));
        }
        Ok(lane_wait)
    }

    /// Decodes a record, or says why it is dead-lettered. A panic in a
    /// decoder is the record's: decoding is pure, so it would panic again.
    fn decode(&self, record: &SourceRecord) -> Result<Decoded, DeadLetter> {
        let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| decode::decode(record, self.max_record_bytes)));
        let now = chrono::Utc::now();
        match decoded {
            Ok(Ok(decoded)) => Ok(decoded),
            Ok(Err(e)) => Err(DeadLetter::new(record, e.reason, &e.detail, now)),
            Err(panic) => {
                self.stats.failure("panic");
                let detail = format!("Decoding the record panicked: {}", failure::panic_message(panic.as_ref()));
                Err(DeadLetter::new(record, DlqReason::Panicked, &detail, now))
            }
        }
    }

    /// Appends the record's messages to the batch's `items`.
    fn prepare<'a>(&self, record: &'a SourceRecord, decoded: Decoded, items: &mut Vec<Item>) -> Decodable<'a> {
        let source = SourceRef { topic: record.topic.clone(), partition: record.partition, offset: record.offset };
        let invalid = decoded.dead_letter();
        let start = items.len();
        items.extend(decoded.messages.into_iter().map(|message| Item { message, source: source.clone() }));
        Decodable { record, range: start..items.len(), skipped: decoded.skipped, invalid }
    }

    /// Places the decodable records' items alone (not shared), isolating
    /// any record that makes placing fail: one entry per decodable record.
    /// `locks[i]` is what placing `items[i]` takes of the lock budget.
    async fn settle(
        &self,
        decodable: &[Decodable<'_>],
        items: &[Item],
        locks: &[u64],
        stop: &watch::Receiver<bool>,
    ) -> Result<Vec<Result<Vec<Outcome>, Failed>>, Interrupted> {
        let Some(first) = items.first() else {
            return Ok(decodable.iter().map(|_| Ok(Vec::new())).collect());
        };
        let reporter = Reporter {
            stats: &self.stats,
            partition: format!("{}/{}", first.source.topic, first.source.partition),
            cause: "postgres",
        };
        let span = record_log::retry_span(&first.source.topic, Some(first.source.partition), "postgres");
        let started = std::time::Instant::now();
        let mut ends = Vec::with_capacity(decodable.len());
        let mut splits = 0;
        // Transactions within the lock budget, in offset order; each is
        // isolated on its own if it fails.
        let needs: Vec<u64> = decodable.iter().map(|d| locks[d.range.clone()].iter().sum()).collect();
        for group in lock_budget::transactions(&needs, self.locks_per_transaction) {
            let units = &decodable[group];
            let sizes: Vec<usize> = units.iter().map(|d| d.range.len()).collect();
            let settled = isolate::settle(&sizes, self.failure_attempts, |part, limit| {
                let needs: Vec<u64> =
                    units[part.clone()].iter().flat_map(|d| &locks[d.range.clone()]).copied().collect();
                let part: Vec<&Item> = units[part].iter().flat_map(|d| &items[d.range.clone()]).collect();
                let reporter = &reporter;
                async move {
                    // One record needing more locks than a transaction may
                    // take (an Infobip batch, a Messenger webhook) is placed
                    // message by message group, in order; the contract lets
                    // a record carrying several messages be placed in part,
                    // and a redrive finds the placed ones as duplicates.
                    let mut outcomes = Vec::with_capacity(part.len());
                    for chunk in lock_budget::transactions(&needs, self.locks_per_transaction) {
                        let chunk = &part[chunk];
                        if chunk.is_empty() {
                            continue;
                        }
                        match retry::attempts(self.retry, stop, limit, reporter, || self.place_once(chunk)).await? {
                            Ok(placed) => outcomes.extend(placed),
                            Err(failed) => return Ok(Err(failed)),
                        }
                    }
                    Ok(Ok(outcomes))
                }
            })
            .instrument(span.clone())
            .await?;
            splits += settled.splits;
            ends.extend(settled.ends);
        }
        if splits > 0 {
            self.stats.batch_splits(splits);
            let isolated = ends.iter().filter(|e| e.is_err()).count();
            // How long the poison held its partition, waits for the
            // infrastructure included (docs/reliability.md).
            let held_ms = started.elapsed().as_millis() as u64;
            tracing::warn!(partition = %reporter.partition, splits, isolated, held_ms, "A failing batch was split to isolate the records that cause it.");
        }
        Ok(ends)
    }

    /// One attempt to place `items` in one transaction, a panic caught and
    /// classed like any failure.
    async fn place_once(&self, items: &[&Item]) -> Result<Vec<Outcome>, Failed> {
        let placing = async {
            if let Some(hook) = &self.panic_placing {
                hook.check(items);
            }
            self.store.apply_batch(items, &self.policy).await
        };
        match AssertUnwindSafe(placing).catch_unwind().await {
            Ok(Ok(placed)) => {
                self.stats.batch_effects(&placed.effects);
                Ok(placed.outcomes)
            }
            Ok(Err(e)) => Err(Failed { verdict: e.verdict(), detail: failure::root_cause(&e), panicked: false }),
            // A panic may be deterministic (a bug the data triggers) or not:
            // a bounded number of tries, then isolation.
            Err(panic) => {
                Err(Failed { verdict: Verdict::Retry, detail: failure::panic_message(panic.as_ref()), panicked: true })
            }
        }
    }

    /// How a decodable record ended, given its messages' outcomes; `None`
    /// when it is dead-lettered for invalid items (counted with the dead
    /// letters).
    fn account(&self, d: &Decodable<'_>, outcomes: &[Outcome]) -> Option<RecordEnd> {
        // Counted with the messages, once the record's placement is decided,
        // not when it is decoded: a batch abandoned at a stop counts nothing.
        for kind in &d.skipped {
            self.stats.entry_skipped(kind.as_str());
        }
        let mut applied = false;
        for outcome in outcomes {
            match outcome {
                Outcome::Applied { rule, landed } => {
                    applied = true;
                    self.stats.message_placed(*rule);
                    record_log::placed(d.record, rule.as_str(), Some(landed.conversation_id));
                }
                Outcome::Duplicate => {
                    self.stats.message_placed(crate::placement::Rule::Duplicate);
                    record_log::placed(d.record, "r0_duplicate", None);
                }
            }
        }
        if d.invalid.is_some() {
            return None;
        }
        Some(match (applied, outcomes.is_empty()) {
            (true, _) => RecordEnd::Applied,
            (false, false) => RecordEnd::Duplicate,
            (false, true) => {
                debug_assert!(!d.skipped.is_empty() || d.range.is_empty());
                RecordEnd::Skipped
            }
        })
    }
}

/// The dead letter of a record whose valid messages were placed but some
/// of whose items are invalid.
fn partly_invalid(d: &Decodable<'_>) -> Option<DeadLetter> {
    d.invalid.as_ref().map(|e| DeadLetter::new(d.record, e.reason, &e.detail, chrono::Utc::now()))
}

/// The dead letter of a record isolated as the cause of a failing batch.
fn isolated(d: &Decodable<'_>, failed: &Failed) -> DeadLetter {
    let (reason, mut detail) = if failed.panicked {
        (DlqReason::Panicked, format!("Placing the record panicked on every attempt: {}", failed.detail))
    } else if failed.verdict == Verdict::Isolate {
        (DlqReason::RejectedByStore, format!("Postgres refused the record's data: {}", failed.detail))
    } else {
        (DlqReason::RejectedByStore, format!("Placing the record failed on every attempt: {}", failed.detail))
    };
    if let Some(invalid) = &d.invalid {
        detail = format!("{detail} Besides, {}", invalid.detail);
    }
    DeadLetter::new(d.record, reason, &detail, chrono::Utc::now())
}
