//! The operators' commands as the CLI runs them: read, decide (with the pure
//! functions of the sibling modules), act, and write a report to `out`.
//! Writing to a `Write` rather than printing lets a closed pipe end the
//! command with an error instead of a panic.

use super::dead_letters::{self as dl, Filter, Letter};
use super::redrive::{self, Choice};
use super::replay::{self, Target};
use crate::config::Settings;
use crate::kafka::{read_topic, GroupOffsets, Publisher};
use anyhow::Context as _;
use std::io::Write;
use std::time::Duration;

/// Every record of the dead-letter topic, at most `max`.
pub(crate) fn read_letters(settings: &Settings, max: usize) -> anyhow::Result<Vec<Letter>> {
    let topic = &settings.kafka.topics.dlq;
    let records = read_topic(&settings.kafka, topic, max, Duration::from_secs(3))
        .with_context(|| format!("reading {topic} from the Kafka broker at {}", settings.kafka.bootstrap_servers))?;
    Ok(records.into_iter().map(Letter::new).collect())
}

/// How `dead-letters` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    /// One line per letter (unless `counts_only`), then the counts per reason.
    Lines { counts_only: bool },
    /// One JSON object per line.
    Json,
    /// Every letter of this source in full.
    Show(String),
}

/// `switchboard dead-letters`.
pub fn dead_letters(
    settings: &Settings,
    max: usize,
    filter: &Filter,
    listing: &Listing,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let topic = &settings.kafka.topics.dlq;
    let letters: Vec<Letter> = read_letters(settings, max)?.into_iter().filter(|l| filter.keeps(l)).collect();
    match listing {
        Listing::Show(source) => {
            let found: Vec<&Letter> = letters.iter().filter(|l| l.source == *source).collect();
            anyhow::ensure!(!found.is_empty(), "no dead letter of {source} on {topic}");
            for l in found {
                writeln!(out, "{}", dl::show(l))?;
            }
        }
        Listing::Json => {
            for l in &letters {
                writeln!(out, "{}", dl::json(l))?;
            }
        }
        Listing::Lines { counts_only } => {
            for l in letters.iter().filter(|_| !counts_only) {
                writeln!(out, "{}", dl::line(l))?;
            }
            for (reason, n) in dl::counts(&letters) {
                writeln!(out, "{n:>8}  {reason}")?;
            }
            writeln!(out, "{} dead letters on {topic}", letters.len())?;
        }
    }
    Ok(())
}

/// `switchboard redrive`. `choice.input_topics` is filled in from the settings.
pub async fn redrive(
    settings: &Settings,
    mut choice: Choice,
    dry_run: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    choice.input_topics = settings.kafka.topics.inputs().iter().map(|t| (*t).to_owned()).collect();
    let letters = read_letters(settings, usize::MAX)?;
    let (sends, skipped) = redrive::plan(&letters, &choice);
    for s in &skipped {
        writeln!(out, "skip  {}  {}", s.from, s.why)?;
    }
    let publisher = Publisher::new(&settings.kafka)?;
    for r in &sends {
        if !dry_run {
            publisher.publish(&r.topic, r.key.as_deref(), r.value.as_deref(), &r.headers).await?;
        }
        let verb = if dry_run { "would send" } else { "sent" };
        writeln!(out, "{verb}  {}  {} -> {} (redrive {})", r.reason, r.from, r.topic, r.redrives)?;
    }
    writeln!(
        out,
        "{} {} redriven, {} skipped{}",
        sends.len(),
        if sends.len() == 1 { "record" } else { "records" },
        skipped.len(),
        if dry_run { " (dry run: nothing sent)" } else { "" }
    )?;
    Ok(())
}

/// `switchboard replay`. Blocking (librdkafka's admin calls).
pub fn replay(
    settings: &Settings,
    group: &str,
    topics: &[String],
    partitions: &[i32],
    target: Target,
    dry_run: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let client = GroupOffsets::new(&settings.kafka, group)?;
    let moves = replay::plan(&client, settings, topics, partitions, target)?;
    write!(out, "{}", replay::table(group, &moves))?;
    if dry_run {
        writeln!(out, "Dry run: nothing committed.")?;
    } else {
        replay::execute(&client, &moves)?;
        writeln!(out, "Committed. The next `switchboard run` of group {group} starts there.")?;
    }
    Ok(())
}
