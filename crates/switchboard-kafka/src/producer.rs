//! Publishing: dead letters, and the demo's sample records. Delivery is awaited, so a caller that stores an offset after
//! `publish` returns knows the record is on the broker.

use super::client_config;
use super::quiet::Quiet;
use crate::record::Header;
use crate::settings::KafkaSettings;
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use std::time::Duration;

/// The largest record Switchboard publishes or creates topics for: the
/// default `max_record_bytes` (10 MiB) with room for the dead-letter headers.
pub(crate) const MAX_MESSAGE_BYTES: &str = "16777216";

/// A publish that did not reach the broker (it is worth retrying).
#[derive(Debug, thiserror::Error)]
#[error("publishing to {topic} failed: {source}")]
pub struct PublishError {
    pub topic: String,
    #[source]
    pub source: rdkafka::error::KafkaError,
}

/// An idempotent producer that waits for every delivery.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer<Quiet>,
}

impl Publisher {
    pub fn new(settings: &KafkaSettings) -> anyhow::Result<Publisher> {
        let producer = client_config(
            settings,
            &[
                ("compression.type", "lz4"),
                ("linger.ms", "5"),
                ("message.timeout.ms", "30000"),
                // A dead letter carries the original record (up to
                // `max_record_bytes`, 10 MiB by default) plus its headers;
                // librdkafka's own default would refuse anything over 1 MB.
                ("message.max.bytes", MAX_MESSAGE_BYTES),
            ],
            // A dead letter acknowledged by one broker only could be lost.
            &[("enable.idempotence", "true"), ("acks", "all")],
        )
        .create_with_context(Quiet)?;
        Ok(Publisher { producer })
    }

    /// Connects to the broker and learns each topic's leaders, so that the
    /// first records published are not held back by the producer's own
    /// start: a record's timestamp is taken when it is sent, and a load test
    /// that counts from there would measure the connection, not the
    /// pipeline.
    pub async fn connect(&self, topics: &[String], timeout: Duration) -> Result<(), rdkafka::error::KafkaError> {
        let producer = self.producer.clone();
        let topics = topics.to_vec();
        tokio::task::spawn_blocking(move || {
            topics.iter().try_for_each(|t| producer.client().fetch_metadata(Some(t), timeout).map(drop))
        })
        .await
        .unwrap_or(Err(rdkafka::error::KafkaError::Canceled))
    }

    /// Publishes one record and waits until the broker has it.
    pub async fn publish(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<(i32, i64), PublishError> {
        let mut kafka_headers = OwnedHeaders::new_with_capacity(headers.len());
        for h in headers {
            kafka_headers = kafka_headers.insert(KafkaHeader { key: &h.key, value: h.value.as_deref() });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(kafka_headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        let delivery = self.producer.send(record, Timeout::After(Duration::from_secs(30))).await;
        match delivery {
            Ok(delivered) => Ok((delivered.partition, delivered.offset)),
            Err((source, _)) => Err(PublishError { topic: topic.to_owned(), source }),
        }
    }
}
