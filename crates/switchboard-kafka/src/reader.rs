//! Reads a topic from the beginning without joining a group (nothing is
//! committed): for operators inspecting dead letters, and for tests.

use super::client_config;
use super::consumer::owned;
use super::quiet::Quiet;
use crate::record::SourceRecord;
use crate::settings::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// Reads `topic` from offset 0 of every partition until `max` records were
/// read or nothing arrived for `quiet` (the end, as far as a reader can
/// tell without trusting the broker's end offsets).
pub fn read_topic(
    settings: &KafkaSettings,
    topic: &str,
    max: usize,
    quiet: Duration,
) -> anyhow::Result<Vec<SourceRecord>> {
    let consumer = reader_at(settings, topic, Offset::Beginning)?;
    let mut out = Vec::new();
    let mut last_record = Instant::now();
    while out.len() < max && last_record.elapsed() < quiet {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                out.push(owned(&message));
                last_record = Instant::now();
            }
            Some(Err(e)) => tracing::debug!(error = %e, "Reading failed; trying again."),
            None => {}
        }
    }
    Ok(out)
}

/// Reads `topic` from the end it has now (every partition), handing each
/// new record to `on`, until `on` returns false.
pub fn follow_topic(
    settings: &KafkaSettings,
    topic: &str,
    mut on: impl FnMut(&SourceRecord) -> bool,
) -> anyhow::Result<()> {
    let consumer = reader_at(settings, topic, Offset::End)?;
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) if !on(&owned(&message)) => return Ok(()),
            Some(Err(e)) => tracing::debug!(error = %e, "Reading failed; trying again."),
            _ => {}
        }
    }
}

/// A consumer outside any group, assigned every partition of `topic` at `at`.
fn reader_at(settings: &KafkaSettings, topic: &str, at: Offset) -> anyhow::Result<BaseConsumer<Quiet>> {
    // group.id is required by librdkafka even for assign(); nothing is committed.
    let consumer: BaseConsumer<Quiet> =
        client_config(settings, &[("group.id", "switchboard-reader")], &[("enable.auto.commit", "false")])
            .create_with_context(Quiet)?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), at)?;
        }
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// What a consume-only pass over some topics read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsumeRate {
    pub records: u64,
    pub bytes: u64,
    /// From the first record received to the last: client start and
    /// metadata requests are not counted.
    pub seconds: f64,
}

/// Reads every partition of `topics` from its start to the end it has now,
/// copying each record out as the worker does, and does nothing else: the
/// ceiling librdkafka and the broker set for the worker on this machine.
pub fn consume_to_end(settings: &KafkaSettings, topics: &[&str]) -> anyhow::Result<ConsumeRate> {
    let consumer: BaseConsumer<Quiet> =
        client_config(settings, &[("group.id", "switchboard-ceiling")], &[("enable.auto.commit", "false")])
            .create_with_context(Quiet)?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0u64;
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
            if high > low {
                tpl.add_partition_offset(topic, p.id(), Offset::Offset(low))?;
                remaining += (high - low) as u64;
            }
        }
    }
    consumer.assign(&tpl)?;
    let (mut records, mut bytes, mut first) = (0u64, 0u64, None);
    let mut last = Instant::now();
    while records < remaining {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let record = owned(&message);
                first.get_or_insert_with(Instant::now);
                records += 1;
                bytes += record.value.as_ref().map_or(0, Vec::len) as u64;
                last = Instant::now();
            }
            Some(Err(e)) => tracing::debug!(error = %e, "Reading failed; trying again."),
            None => anyhow::ensure!(last.elapsed() < Duration::from_secs(30), "no record for 30 s at {records}"),
        }
    }
    let seconds = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    Ok(ConsumeRate { records, bytes, seconds })
}
