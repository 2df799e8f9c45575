//! Reads a topic from the beginning without joining a group (nothing is
//! committed): for operators inspecting dead letters, and for tests.

use super::client_config;
use super::consumer::owned;
use crate::config::KafkaSettings;
use crate::record::SourceRecord;
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
    // group.id is required by librdkafka even for assign(); nothing is committed.
    let consumer: BaseConsumer =
        client_config(settings, &[("group.id", "switchboard-reader")], &[("enable.auto.commit", "false")]).create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
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
