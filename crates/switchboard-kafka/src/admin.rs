//! Topic creation, for the scripts, the demo and the tests. Production
//! topics are normally created by the platform team; this only fills gaps.
//! Deletion is for what the benchmark and the tests create: a broker keeps
//! spending CPU on every partition it holds, idle or not.

use super::client_config;
use super::producer::MAX_MESSAGE_BYTES;
use super::quiet::Quiet;
use crate::settings::KafkaSettings;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use std::time::Duration;

/// Creates each topic with `partitions` partitions unless it exists. The
/// topics accept records up to [`MAX_MESSAGE_BYTES`], whatever the broker's
/// default (1 MB on a stock Kafka), so a record the input topic took can
/// always be dead-lettered whole.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str], partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<Quiet> = client_config(settings, &[], &[]).create_with_context(Quiet)?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)).set("max.message.bytes", MAX_MESSAGE_BYTES))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic} failed: {code}"),
        }
    }
    Ok(())
}

/// Deletes the topics; one that does not exist is not an error.
pub async fn delete_topics(settings: &KafkaSettings, topics: &[&str]) -> anyhow::Result<()> {
    let admin: AdminClient<Quiet> = client_config(settings, &[], &[]).create_with_context(Quiet)?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.delete_topics(topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => anyhow::bail!("deleting topic {topic} failed: {code}"),
        }
    }
    Ok(())
}
