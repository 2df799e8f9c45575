//! Everything that speaks Kafka: the consumer, the producers (dead letters,
//! events, publishing for the operators' tools and the load tool), topic
//! administration, offsets and readers. The only crate of the workspace that
//! depends on rdkafka; it hands the rest of the worker owned
//! [`SourceRecord`](switchboard_core::record::SourceRecord)s and reads its
//! errors into the failure policy's verdicts ([`of_kafka`]).

// Public items are the ones other crates use; the compiler names any other.
#![warn(unreachable_pub)]

mod admin;
mod classify;
mod consumer;
mod events;
mod offsets;
mod polling;
mod preflight;
mod producer;
mod quiet;
mod reader;
pub mod settings;
mod source;

pub use admin::{delete_topics, ensure_topics};
pub use classify::of_kafka;
pub use consumer::{Consumer, PartitionKey};
pub use events::EventProducer;
pub use offsets::{GroupOffsets, OffsetsError};
pub use preflight::{preflight, Access, Probed, Refusal};
pub use producer::{PublishError, Publisher};
pub use quiet::Quiet;
/// Errors of the Kafka client, as the consumer's methods return them.
pub use rdkafka::error::KafkaError;
pub use reader::{consume_to_end, follow_topic, read_topic, ConsumeRate};
pub use source::{Polled, Revoking, Source};

use rdkafka::ClientConfig;
pub use settings::{KafkaSettings, TopicSettings};
use switchboard_core::{failure, record};

/// The librdkafka configuration shared by every client: the bootstrap
/// servers, then Switchboard's defaults, then the operator's pass-through
/// properties, then `fixed`: the few settings the delivery guarantee rests
/// on, which no pass-through may change.
fn client_config(settings: &KafkaSettings, defaults: &[(&str, &str)], fixed: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &settings.bootstrap_servers);
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in &settings.properties {
        if fixed.iter().any(|(name, _)| name == k) {
            tracing::warn!(property = %k, "This librdkafka property is fixed by Switchboard; the configured value is ignored.");
        }
        config.set(k, v);
    }
    for (k, v) in fixed {
        config.set(*k, *v);
    }
    config
}
