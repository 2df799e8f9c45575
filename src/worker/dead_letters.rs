//! Publishing a dead letter, whatever the broker says. The infrastructure's
//! failures are waited out (the partition's offsets do not move until the
//! letter is on the broker); a letter the broker refuses for its size
//! (larger than the dead-letter topic's `max.message.bytes`) is replaced by
//! a smaller one that says so (`dlq_truncated: true`, the first bytes of the
//! value, [`crate::dead_letter::TRUNCATION_STEPS`]). Any other refusal, and
//! a refusal of even the smallest letter (the `dlq_*` headers alone), means
//! the topic itself is wrong: the partition waits for the operator, and
//! `/readyz` says so.

use super::batch::Pipeline;
use super::reporter::Reporter;
use super::retry::{self, Failed, Interrupted};
use crate::dead_letter::{DeadLetter, DlqReason, TRUNCATION_STEPS};
use crate::failure::{Infra, PublishVerdict, Verdict};
use crate::record::SourceRecord;
use crate::stats::RecordEnd;
use crate::telemetry::record_log;
use std::borrow::Cow;
use tokio::sync::watch;
use tracing::Instrument as _;

impl Pipeline {
    /// Dead-letters `record` as `panicked` and counts it: the partition's
    /// task panicked on it on every attempt (`partition::Step::quarantine`).
    pub(super) async fn dead_letter_panicked(
        &self,
        record: &SourceRecord,
        panic: &str,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), Interrupted> {
        let detail = format!("The worker panicked on this record on every attempt: {panic}");
        let letter = DeadLetter::new(record, DlqReason::Panicked, &detail, chrono::Utc::now());
        self.dead_letter(&letter, stop).await?;
        self.stats.failure("panic");
        self.stats.record_ended(RecordEnd::DeadLettered(DlqReason::Panicked));
        Ok(())
    }

    /// Publishes `letter`, or a truncated stand-in the broker takes.
    pub(super) async fn dead_letter(
        &self,
        letter: &DeadLetter,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), Interrupted> {
        record_log::dead_lettered(letter);
        let (topic, partition, _) = record_log::source_parts(&letter.source);
        let reporter = Reporter {
            stats: &self.stats,
            partition: format!("{topic}/{}", partition.map_or_else(String::new, |p| p.to_string())),
            cause: "dead_letter_publish",
        };
        let span = record_log::retry_span(topic, partition, "dead_letter_publish");
        let mut current = Cow::Borrowed(letter);
        let mut steps = TRUNCATION_STEPS.iter();
        loop {
            let last = steps.len() == 0;
            let published =
                retry::attempts(self.retry, stop, self.failure_attempts, &reporter, || self.publish(&current, last))
                    .instrument(span.clone())
                    .await?;
            let refused = match published {
                Ok(()) => return Ok(()),
                Err(refused) => refused,
            };
            // Only a refusal of the smallest letter gets here with no step
            // left, and that one is waited out above.
            let Some(&(value_bytes, keep_headers)) = steps.next() else { return Ok(()) };
            tracing::warn!(
                source = %letter.source,
                error = %refused.detail,
                value_bytes,
                keep_headers,
                "The dead-letter topic refused a dead letter; publishing a truncated one instead."
            );
            self.stats.dead_letter_truncated();
            current = Cow::Owned(letter.truncated(value_bytes, keep_headers));
        }
    }

    /// One attempt to publish `letter`. With `last`, any refusal that is
    /// not an outage is the dead-letter topic's: waited out.
    async fn publish(&self, letter: &DeadLetter, last: bool) -> Result<(), Failed> {
        let published = self
            .publisher
            .publish(&self.dlq_topic, letter.key.as_deref(), letter.value.as_deref(), &letter.headers)
            .await;
        let Err(e) = published else { return Ok(()) };
        // Only a refusal for size moves on to a smaller letter: anything
        // else may pass, and truncating would lose the only whole copy once
        // the input topic's retention removes the original. A dead letter
        // has nowhere further to go, so that is waited out.
        Err(Failed {
            verdict: on_refusal(crate::kafka::of_kafka(&e.source), last),
            detail: e.to_string(),
            panicked: false,
        })
    }
}

/// What a refused dead letter calls for: an outage is waited out; a refusal
/// for size moves on to a smaller letter (`Isolate` ends the tries of this
/// one) unless this is the smallest; anything else waits for the operator.
fn on_refusal(refusal: PublishVerdict, last: bool) -> Verdict {
    match refusal {
        PublishVerdict::Is(Verdict::Wait(cause)) => Verdict::Wait(cause),
        PublishVerdict::TooLarge if !last => Verdict::Isolate,
        _ => Verdict::Wait(Infra::DeadLetterTopic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_for_size_makes_a_dead_letter_smaller() {
        assert_eq!(on_refusal(PublishVerdict::TooLarge, false), Verdict::Isolate);
        let outage = PublishVerdict::Is(Verdict::Wait(Infra::Unreachable));
        assert_eq!(on_refusal(outage, false), Verdict::Wait(Infra::Unreachable));
        // An unknown refusal might pass; truncating would lose the only
        // whole copy once the input topic's retention removes the original.
        for refusal in [PublishVerdict::Is(Verdict::Retry), PublishVerdict::Is(Verdict::Isolate)] {
            assert_eq!(on_refusal(refusal, false), Verdict::Wait(Infra::DeadLetterTopic));
        }
        assert_eq!(
            on_refusal(PublishVerdict::TooLarge, true),
            Verdict::Wait(Infra::DeadLetterTopic),
            "nothing smaller"
        );
    }
}
