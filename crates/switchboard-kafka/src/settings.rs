//! Where the broker is and what the topics are called: the part of the
//! settings this crate reads. The worker's configuration (`config`) embeds
//! it under `[kafka]`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use switchboard_core::domain::Channel;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub topics: TopicSettings,
    /// librdkafka properties passed through as is.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    pub email: String,
    pub sms: String,
    pub messenger: String,
    pub dlq: String,
    /// Conversation events (contract section 6).
    pub events: String,
}

impl TopicSettings {
    /// The three input topics.
    pub fn inputs(&self) -> [&str; 3] {
        [&self.email, &self.sms, &self.messenger]
    }

    /// The input topic of a channel.
    pub fn for_channel(&self, channel: Channel) -> &str {
        match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
            Channel::Messenger => &self.messenger,
        }
    }
}

/// Whether a librdkafka property holds a secret (`sasl.password`,
/// `ssl.key.password`, `sasl.oauthbearer.client.secret`, ...), so that
/// `Debug` output and logs never show its value.
pub fn is_secret_property(name: &str) -> bool {
    name.contains("password") || name.contains("secret") || name.ends_with(".pem") || name.contains("sasl.jaas")
}

/// Property values with the secrets replaced, for `Debug`.
pub fn redacted(properties: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    properties
        .iter()
        .map(|(k, v)| (k.as_str(), if is_secret_property(k) { "<redacted>" } else { v.as_str() }))
        .collect()
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("properties", &redacted(&self.properties))
            .finish()
    }
}
