//! The producer of conversation events (the worker's `publisher` drives
//! it): idempotent, every record acknowledged by all in-sync replicas, and
//! no delivery timeout, so that during a broker outage the records wait in
//! the producer, in order, and go out when the broker is back.

use super::client_config;
use super::quiet::Quiet;
use crate::settings::KafkaSettings;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use uuid::Uuid;

pub struct EventProducer {
    producer: FutureProducer<Quiet>,
}

impl EventProducer {
    /// A producer for the cluster of `kafka` (`Settings::events_kafka`).
    pub fn new(kafka: &KafkaSettings) -> anyhow::Result<EventProducer> {
        let producer = client_config(
            kafka,
            &[("compression.type", "lz4"), ("linger.ms", "5")],
            &[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                // A round that cannot be delivered fails after this and is
                // tried again: the rows stay in the outbox meanwhile, and
                // the publisher can say why and stop when asked.
                ("message.timeout.ms", "30000"),
            ],
        )
        .create_with_context(Quiet)?;
        Ok(EventProducer { producer })
    }

    /// Sends the records in order (keyed by conversation) and waits for every
    /// acknowledgement; one result per record sent (fewer than the records
    /// when one was refused at once: those after it were not sent).
    pub async fn send_in_order(&self, topic: &str, records: &[(Uuid, &str)]) -> Vec<Result<(), KafkaError>> {
        let mut deliveries = Vec::with_capacity(records.len());
        for (key, payload) in records {
            let key = key.to_string();
            let record = FutureRecord::to(topic).key(key.as_bytes()).payload(payload.as_bytes());
            // Enqueued in order; the idempotent producer keeps that order
            // per partition through retries. Nothing is enqueued after a
            // refusal (a full queue): it would overtake the refused one.
            let sent = self.producer.send_result(record).map_err(|(e, _)| e);
            let refused = sent.is_err();
            deliveries.push(sent);
            if refused {
                break;
            }
        }
        let mut results = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            results.push(match d {
                Err(e) => Err(e),
                Ok(future) => match future.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e),
                    Err(_canceled) => Err(KafkaError::Canceled),
                },
            });
        }
        results
    }
}
