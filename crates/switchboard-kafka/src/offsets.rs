//! A consumer group's offsets seen from outside the group: committed
//! offsets, watermarks, offsets for a time, the group's members, and
//! committing new offsets while the group is empty. For the lag metric and
//! `switchboard replay`. This client never joins the group (it never
//! subscribes), so it takes no partitions away from the workers.

use super::client_config;
use super::quiet::Quiet;
use super::PartitionKey;
use crate::settings::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long one broker request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why an offsets operation failed, in the terms an operator acts on.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    /// The group has live members: offsets can move only while it is empty.
    /// Checked before committing; a member that joins in between makes the
    /// broker refuse the commit (Apache Kafka 4.1 answers UNKNOWN_MEMBER_ID
    /// to a commit from outside a non-empty group; NON_EMPTY_GROUP is mapped
    /// the same way).
    #[error("consumer group {group} has live members ({detail}); stop every worker of the group first")]
    GroupNotEmpty { group: String, detail: String },
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    #[error("cannot reach the Kafka broker at {servers}: {source}")]
    Broker {
        servers: String,
        #[source]
        source: KafkaError,
    },
}

/// Reads and moves one group's offsets.
pub struct GroupOffsets {
    consumer: BaseConsumer<Quiet>,
    group: String,
    servers: String,
}

impl GroupOffsets {
    pub fn new(settings: &KafkaSettings, group: &str) -> Result<GroupOffsets, OffsetsError> {
        let servers = settings.bootstrap_servers.clone();
        let consumer = client_config(settings, &[], &[("group.id", group), ("enable.auto.commit", "false")])
            .create_with_context(Quiet)
            .map_err(|source| OffsetsError::Broker { servers: servers.clone(), source })?;
        Ok(GroupOffsets { consumer, group: group.to_owned(), servers })
    }

    fn broker(&self, source: KafkaError) -> OffsetsError {
        OffsetsError::Broker { servers: self.servers.clone(), source }
    }

    /// Every partition of `topics`, in order.
    pub fn partitions(&self, topics: &[&str]) -> Result<Vec<PartitionKey>, OffsetsError> {
        let mut out = Vec::new();
        for topic in topics {
            let metadata = self.consumer.fetch_metadata(Some(topic), TIMEOUT).map_err(|e| self.broker(e))?;
            let t = metadata.topics().first().filter(|t| t.error().is_none() && !t.partitions().is_empty());
            let Some(t) = t else { return Err(OffsetsError::UnknownTopic((*topic).to_owned())) };
            let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            ids.sort_unstable();
            out.extend(ids.into_iter().map(|p| ((*topic).to_owned(), p)));
        }
        Ok(out)
    }

    /// The group's committed offset per partition (`None`: nothing committed).
    pub fn committed(&self, partitions: &[PartitionKey]) -> Result<BTreeMap<PartitionKey, Option<i64>>, OffsetsError> {
        let committed = self.consumer.committed_offsets(list(partitions), TIMEOUT).map_err(|e| self.broker(e))?;
        Ok(by_partition(&committed))
    }

    /// (low, high) watermarks: the earliest offset and the end.
    pub fn watermarks(&self, key: &PartitionKey) -> Result<(i64, i64), OffsetsError> {
        self.consumer.fetch_watermarks(&key.0, key.1, TIMEOUT).map_err(|e| self.broker(e))
    }

    /// Per partition, the first offset whose timestamp is at or after
    /// `millis`, or `None` when there is none (then the end is meant).
    pub fn offsets_for_time(
        &self,
        partitions: &[PartitionKey],
        millis: i64,
    ) -> Result<BTreeMap<PartitionKey, Option<i64>>, OffsetsError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            tpl.add_partition_offset(t, *p, Offset::Offset(millis)).map_err(|e| self.broker(e))?;
        }
        let found = self.consumer.offsets_for_times(tpl, TIMEOUT).map_err(|e| self.broker(e))?;
        Ok(by_partition(&found))
    }

    /// The group's live members, as `client-id@host` (empty: no member).
    pub fn members(&self) -> Result<Vec<String>, OffsetsError> {
        let groups = self.consumer.fetch_group_list(Some(&self.group), TIMEOUT).map_err(|e| self.broker(e))?;
        Ok(groups
            .groups()
            .iter()
            .filter(|g| g.name() == self.group)
            .flat_map(|g| g.members().iter().map(|m| format!("{}@{}", m.client_id(), m.client_host())))
            .collect())
    }

    /// Commits `offsets` for the group. Refused while the group has members:
    /// checked first, and the broker refuses too if one joins meanwhile.
    pub fn commit(&self, offsets: &[(PartitionKey, i64)]) -> Result<(), OffsetsError> {
        let members = self.members()?;
        if !members.is_empty() {
            return Err(OffsetsError::GroupNotEmpty {
                group: self.group.clone(),
                detail: format!("{}: {}", members.len(), members.join(", ")),
            });
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o)).map_err(|e| self.broker(e))?;
        }
        match self.consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => Ok(()),
            Err(KafkaError::ConsumerCommit(
                code @ (RDKafkaErrorCode::NonEmptyGroup
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress),
            )) => Err(OffsetsError::GroupNotEmpty {
                group: self.group.clone(),
                detail: format!("the broker refused the commit with {code:?}"),
            }),
            Err(e) => Err(self.broker(e)),
        }
    }
}

fn list(partitions: &[PartitionKey]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in partitions {
        tpl.add_partition(t, *p);
    }
    tpl
}

/// A partition list's offsets by partition; `None` where it holds no
/// concrete offset (nothing committed, no record at or after a time).
fn by_partition(tpl: &TopicPartitionList) -> BTreeMap<PartitionKey, Option<i64>> {
    tpl.elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            ((e.topic().to_owned(), e.partition()), offset)
        })
        .collect()
}
