//! One step of a partition's work: a batch of records in offset order is
//! decoded, placed in one transaction (shared with other partitions' small
//! batches when they are ready at once, [`super::coalesce`]), and what
//! cannot be placed is dead-lettered. When the step returns `Ok`, every
//! record of the batch is durably applied or on the dead-letter topic, and
//! its offset may be stored.
//!
//! A record carrying several messages of which some are invalid (contract
//! section 5) is both: its valid messages are placed with the batch, then
//! the record is dead-lettered whole, as received, and counted as a dead
//! letter. Placing first means a redrive finds those messages as duplicates.

use super::coalesce::Coalescer;
use super::retry::{self, Interrupted, RetryPolicy};
use crate::dead_letter::{DeadLetter, DlqReason};
use crate::decode::{self, DecodeError, Decoded};
use crate::kafka::Publisher;
use crate::placement::Policy;
use crate::record::SourceRecord;
use crate::stats::{RecordEnd, Stats};
use crate::store::{Item, Outcome, SourceRef, Store, StoreError};
use crate::telemetry::record_log;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::Instrument as _;

/// What a batch step needs; shared by all partition tasks.
pub struct Pipeline {
    pub store: Store,
    pub publisher: Publisher,
    pub dlq_topic: String,
    pub policy: Policy,
    pub max_record_bytes: usize,
    pub retry: RetryPolicy,
    pub stats: Arc<Stats>,
    /// Shares transactions between partitions whose batches are ready at
    /// once ([`super::coalesce`]); `None`: every batch alone.
    pub coalescer: Option<Coalescer>,
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
    /// buffer counts them). Returns `Err(Interrupted)` only when asked to
    /// stop while waiting out a transient failure; then nothing may be
    /// marked done.
    pub async fn process(
        &self,
        records: &[SourceRecord],
        bytes: usize,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), Interrupted> {
        let mut dead = Vec::new();
        let mut decodable = Vec::new();
        let mut items = Vec::new();
        for record in records {
            match decode::decode(record, self.max_record_bytes) {
                Ok(decoded) => decodable.push(self.prepare(record, decoded, &mut items)),
                Err(e) => dead.push(DeadLetter::new(record, e.reason, &e.detail, chrono::Utc::now())),
            }
        }

        let items = Arc::new(items);
        let shared = match &self.coalescer {
            Some(coalescer) if !items.is_empty() => coalescer.place(items.clone(), records.len(), bytes).await,
            _ => None,
        };
        let placed = match shared {
            Some(outcomes) => Ok(outcomes),
            None => self.apply(&items.iter().collect::<Vec<_>>(), stop).await?,
        };
        let mut ends = Vec::new();
        match placed {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for d in &decodable {
                    let mine: Vec<Outcome> = outcomes.by_ref().take(d.range.len()).collect();
                    ends.push(self.account(d, &mine));
                    dead.extend(partly_invalid(d));
                }
            }
            // One record's data poisons the whole transaction: find it by
            // placing the records one at a time.
            Err(StoreError::Rejected(_)) => {
                for d in &decodable {
                    match self.apply(&items[d.range.clone()].iter().collect::<Vec<_>>(), stop).await? {
                        Ok(outcomes) => {
                            ends.push(self.account(d, &outcomes));
                            dead.extend(partly_invalid(d));
                        }
                        Err(e) => {
                            let mut detail = format!("Postgres refused the record's data: {}", root_cause(&e));
                            if let Some(invalid) = &d.invalid {
                                detail = format!("{detail} Besides, {}", invalid.detail);
                            }
                            dead.push(DeadLetter::new(
                                d.record,
                                DlqReason::RejectedByStore,
                                &detail,
                                chrono::Utc::now(),
                            ));
                        }
                    }
                }
            }
            Err(StoreError::Transient(_)) => {
                unreachable!("apply retries transient errors until they clear")
            }
        }

        for letter in &dead {
            self.dead_letter(letter, stop).await?;
        }
        // A record dead-lettered for invalid items ends as a dead letter,
        // not also as applied: every record ends exactly one way.
        for end in ends.into_iter().flatten() {
            self.stats.record_ended(end);
        }
        for letter in &dead {
            self.stats.record_ended(RecordEnd::DeadLettered(letter.reason));
        }
        Ok(())
    }

    /// Appends the record's messages to the batch's `items`.
    fn prepare<'a>(&self, record: &'a SourceRecord, decoded: Decoded, items: &mut Vec<Item>) -> Decodable<'a> {
        let source = SourceRef { topic: record.topic.clone(), partition: record.partition, offset: record.offset };
        let invalid = decoded.dead_letter();
        let start = items.len();
        items.extend(decoded.messages.into_iter().map(|message| Item { message, source: source.clone() }));
        Decodable { record, range: start..items.len(), skipped: decoded.skipped, invalid }
    }

    /// Places items, waiting out transient failures.
    async fn apply(
        &self,
        items: &[&Item],
        stop: &watch::Receiver<bool>,
    ) -> Result<Result<Vec<Outcome>, StoreError>, Interrupted> {
        if items.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let what = items
            .first()
            .map_or_else(String::new, |i| format!("Placing a batch from {}/{}", i.source.topic, i.source.partition));
        retry::until_done(
            self.retry,
            stop,
            &what,
            StoreError::is_transient,
            || self.stats.retried("postgres"),
            || self.store.apply_batch(items, &self.policy),
        )
        // Retry warnings carry the partition and the cause as fields.
        .instrument(record_log::retry_span(
            items.first().map_or("", |i| &i.source.topic),
            items.first().map(|i| i.source.partition),
            "postgres",
        ))
        .await
        .map(|placed| {
            placed.map(|p| {
                self.stats.batch_effects(&p.effects);
                p.outcomes
            })
        })
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

    async fn dead_letter(&self, letter: &DeadLetter, stop: &watch::Receiver<bool>) -> Result<(), Interrupted> {
        record_log::dead_lettered(letter);
        let published = retry::until_done(
            self.retry,
            stop,
            "Publishing a dead letter",
            |_| true,
            || self.stats.retried("dead_letter_publish"),
            || self.publisher.publish(&self.dlq_topic, letter.key.as_deref(), letter.value.as_deref(), &letter.headers),
        )
        .instrument({
            let (topic, partition, _) = record_log::source_parts(&letter.source);
            record_log::retry_span(topic, partition, "dead_letter_publish")
        })
        .await?;
        // Every publish error is retried, so only success gets here.
        debug_assert!(published.is_ok());
        Ok(())
    }
}

/// The dead letter of a record whose valid messages were placed but some
/// of whose items are invalid.
fn partly_invalid(d: &Decodable<'_>) -> Option<DeadLetter> {
    d.invalid.as_ref().map(|e| DeadLetter::new(d.record, e.reason, &e.detail, chrono::Utc::now()))
}

/// The innermost message of an error chain: Postgres's own words.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
