//! Settings: `config/default.toml` (embedded, so the binary runs from any
//! directory), then an optional file, then environment variables, then
//! command-line flags. Parsed once at start into typed values; an unknown
//! key is an error, so a typo never silently does nothing.

use crate::placement::{Policy, SenderPolicy, Status};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
pub use switchboard_kafka::settings::{is_secret_property, redacted, KafkaSettings, TopicSettings};

const DEFAULTS: &str = include_str!("../config/default.toml");

/// Everything Switchboard can be told. See `config/default.toml` for each key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub kafka: KafkaSettings,
    pub worker: WorkerSettings,
    pub placement: PlacementSettings,
    pub threading: ThreadingSettings,
    pub events: EventSettings,
    pub http: HttpSettings,
}

/// Conversation events out (contract section 6): the outbox and its
/// publisher.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// Write events to the outbox and publish them. Off: neither.
    pub enabled: bool,
    /// The cluster to publish to; empty: `kafka.bootstrap_servers`.
    #[serde(default)]
    pub bootstrap_servers: String,
    /// Outbox rows read and published per round.
    pub publish_batch: usize,
    /// `/readyz` fails and says why when the outbox holds more rows than
    /// this, or its oldest row is older than `outbox_alarm_age`.
    pub outbox_alarm_rows: u64,
    #[serde(with = "duration_text")]
    pub outbox_alarm_age: Duration,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Postgres URL; may hold a password, so `Debug` does not print it.
    pub url: String,
    pub max_connections: u32,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Larger records are dead-lettered as `too_large`.
    pub max_record_bytes: usize,
    /// Records of one partition per transaction, at most.
    pub batch_max_records: usize,
    /// Bytes (record values, keys and headers) per transaction, at most; a
    /// single larger record still goes alone.
    pub batch_max_bytes: usize,
    /// Records buffered per partition (in-flight batch included) before the
    /// partition is paused.
    pub partition_queue_records: usize,
    /// Bytes buffered per partition (in-flight batch included) before the
    /// partition is paused.
    pub partition_queue_bytes: usize,
    /// Transactions that may each place the batches of several partitions
    /// ready at once (`worker::coalesce`); 0: every batch alone.
    pub shared_transactions: usize,
    /// Only batches of at most this fraction of a full batch, in records
    /// and in bytes, are shared; larger ones go alone.
    pub shared_batch_fraction: f64,
    /// How long a shared transaction waits for any lock before it gives up
    /// and its batches are placed one by one.
    #[serde(with = "duration_text")]
    pub shared_lock_timeout: Duration,
    #[serde(with = "duration_text")]
    pub retry_initial: Duration,
    #[serde(with = "duration_text")]
    pub retry_max: Duration,
    /// How long a revoked partition's in-flight batch may run before it is
    /// abandoned and the partition handed over.
    #[serde(with = "duration_text")]
    pub drain_timeout: Duration,
    /// How long a stop request (SIGTERM) waits for in-flight batches.
    #[serde(with = "duration_text")]
    pub shutdown_timeout: Duration,
    /// How long `run --stop-at-end` waits for every partition to be
    /// committed at its end before it gives up with an error.
    #[serde(with = "duration_text")]
    pub stop_at_end_timeout: Duration,
    /// For tests only: `topic/partition/offset` of a record whose batch makes
    /// the partition task panic, once per process. Empty: off.
    #[serde(default)]
    pub test_panic_at: String,
    /// How many times a batch (and, once split, a single record) is tried
    /// when it fails for a reason that is not the infrastructure's, before
    /// it is split or the record dead-lettered (`docs/reliability.md`).
    pub failure_attempts: u32,
    /// For tests only: `topic/partition/offset` makes every placement
    /// attempt of a batch holding that record panic. Empty: off.
    #[serde(default)]
    pub test_panic_placing: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementSettings {
    pub reopen_statuses: Vec<String>,
    #[serde(with = "duration_text")]
    pub sms_follow_up_window: Duration,
    #[serde(with = "duration_text")]
    pub messenger_follow_up_window: Duration,
}

/// Who may join a conversation by replying to one of its messages
/// (contract section 3, sender policy).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadingSettings {
    /// `participants` (default), `domain` or `any`; env
    /// `SWITCHBOARD__THREADING__REPLY_SENDERS`.
    pub reply_senders: String,
    /// The same per inbox (the endpoint address, as received), overriding
    /// `reply_senders` there.
    #[serde(default)]
    pub reply_senders_by_endpoint: BTreeMap<String, String>,
    /// R8: how long after Switchboard started a conversation for replies
    /// that came before their parent it may still merge it into the
    /// parent's; "0s" never merges (only links). Env
    /// `SWITCHBOARD__THREADING__LATE_PARENT_WINDOW`.
    #[serde(with = "duration_text", default = "default_late_parent_window")]
    pub late_parent_window: Duration,
}

fn default_late_parent_window() -> Duration {
    Duration::from_secs(3600)
}

/// The operators' HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// `host:port` to listen on, or `off`.
    pub addr: String,
    /// A partition with work waiting and no progress for this long makes
    /// `/readyz` answer 503.
    #[serde(with = "duration_text")]
    pub stuck_after: Duration,
    /// How often the broker is asked for watermarks and committed offsets
    /// (the lag metric, and the broker half of `/readyz`).
    #[serde(with = "duration_text")]
    pub poll_interval: Duration,
}

impl HttpSettings {
    /// The address to listen on; `None` when disabled.
    pub(crate) fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, SettingsError> {
        if self.addr.trim().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        self.addr
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| SettingsError::Invalid(format!("http.addr {:?}: {e} (expected host:port or off)", self.addr)))
    }
}

/// Overrides given on the command line or in the fixed environment names.
#[derive(Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub database_url: Option<String>,
    pub bootstrap_servers: Option<String>,
    pub group_id: Option<String>,
    pub topic_email: Option<String>,
    pub topic_sms: Option<String>,
    pub topic_messenger: Option<String>,
    pub topic_dlq: Option<String>,
    pub topic_events: Option<String>,
    /// `http.addr`: `host:port` or `off`.
    pub http_addr: Option<String>,
    /// `name=value` librdkafka properties.
    pub kafka_properties: Vec<(String, String)>,
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: BTreeMap<String, String> = self.kafka_properties.iter().cloned().collect();
        f.debug_struct("Overrides")
            .field("config_file", &self.config_file)
            .field("database_url", &self.database_url.as_ref().map(|_| "<redacted>"))
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("topic_email", &self.topic_email)
            .field("topic_sms", &self.topic_sms)
            .field("topic_messenger", &self.topic_messenger)
            .field("topic_dlq", &self.topic_dlq)
            .field("topic_events", &self.topic_events)
            .field("http_addr", &self.http_addr)
            .field("kafka_properties", &redacted(&properties))
            .finish()
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads the layers. `env` is the process environment (passed in so tests
    /// need not touch the real one).
    pub fn load(overrides: &Overrides, env: &[(String, String)]) -> Result<Settings, SettingsError> {
        let mut builder =
            config::Config::builder().add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = &overrides.config_file {
            builder = builder.add_source(config::File::from(path.as_path()));
        }
        let generic: config::Map<String, String> =
            env.iter().filter(|(k, _)| k.starts_with("SWITCHBOARD__")).cloned().collect();
        builder = builder.add_source(
            config::Environment::with_prefix("SWITCHBOARD")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("placement.reopen_statuses")
                .try_parsing(true)
                .source(Some(generic)),
        );
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        for (name, value) in env {
            if let Some(prop) = name.strip_prefix("SWITCHBOARD_RDKAFKA_") {
                settings.kafka.properties.insert(prop.to_lowercase().replace('_', "."), value.clone());
            }
        }
        settings.apply(overrides);
        settings.validate()?;
        Ok(settings)
    }

    fn apply(&mut self, o: &Overrides) {
        let set = |slot: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                slot.clone_from(v);
            }
        };
        set(&mut self.database.url, &o.database_url);
        set(&mut self.kafka.bootstrap_servers, &o.bootstrap_servers);
        set(&mut self.kafka.group_id, &o.group_id);
        set(&mut self.kafka.topics.email, &o.topic_email);
        set(&mut self.kafka.topics.sms, &o.topic_sms);
        set(&mut self.kafka.topics.messenger, &o.topic_messenger);
        set(&mut self.kafka.topics.dlq, &o.topic_dlq);
        set(&mut self.kafka.topics.events, &o.topic_events);
        set(&mut self.http.addr, &o.http_addr);
        for (k, v) in &o.kafka_properties {
            self.kafka.properties.insert(k.clone(), v.clone());
        }
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |m: String| Err(SettingsError::Invalid(m));
        let w = &self.worker;
        if w.batch_max_records == 0
            || w.partition_queue_records == 0
            || w.batch_max_bytes == 0
            || w.partition_queue_bytes == 0
        {
            return invalid("worker.batch_max_* and worker.partition_queue_* must be positive".into());
        }
        if w.batch_max_records > w.partition_queue_records || w.batch_max_bytes > w.partition_queue_bytes {
            return invalid(
                "a batch must fit in its partition's buffer: worker.batch_max_* <= worker.partition_queue_*".into(),
            );
        }
        if self.events.publish_batch == 0 {
            return invalid("events.publish_batch must be positive".into());
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections must be positive".into());
        }
        if w.shared_transactions >= self.database.max_connections as usize {
            return invalid(format!(
                "worker.shared_transactions ({}) must leave connections for batches placed alone: below database.max_connections ({})",
                w.shared_transactions, self.database.max_connections
            ));
        }
        if !(w.shared_batch_fraction > 0.0 && w.shared_batch_fraction <= 1.0) {
            return invalid(format!(
                "worker.shared_batch_fraction ({}) must be above 0 and at most 1",
                w.shared_batch_fraction
            ));
        }
        if w.shared_transactions > 0 && w.shared_lock_timeout.is_zero() {
            return invalid("worker.shared_lock_timeout must be positive (0 would let Postgres wait forever)".into());
        }
        self.policy()?;
        self.http.listen_addr()?;
        Ok(())
    }

    /// The Kafka settings events are published with: `events.bootstrap_servers`
    /// when set, else the input cluster's; the same properties either way.
    pub fn events_kafka(&self) -> KafkaSettings {
        let mut kafka = self.kafka.clone();
        if !self.events.bootstrap_servers.trim().is_empty() {
            kafka.bootstrap_servers = self.events.bootstrap_servers.trim().to_owned();
        }
        kafka
    }

    /// The decision table's policy.
    pub fn policy(&self) -> Result<Policy, SettingsError> {
        let mut reopen = Vec::new();
        for s in &self.placement.reopen_statuses {
            match Status::parse(s) {
                Some(Status::Closed) => {
                    return Err(SettingsError::Invalid(
                        "placement.reopen_statuses: a closed conversation is never reopened".into(),
                    ))
                }
                Some(status) => reopen.push(status),
                None => return Err(SettingsError::Invalid(format!("placement.reopen_statuses: unknown status {s:?}"))),
            }
        }
        let window =
            |d: Duration| (!d.is_zero()).then(|| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
        let senders = |key: &str, text: &str| {
            SenderPolicy::parse(text)
                .ok_or_else(|| SettingsError::Invalid(format!("{key}: {text:?} is not participants, domain or any")))
        };
        let t = &self.threading;
        let mut by_endpoint = BTreeMap::new();
        for (endpoint, text) in &t.reply_senders_by_endpoint {
            // Endpoints are compared normalized, as messages carry them.
            by_endpoint.insert(endpoint.trim().to_lowercase(), senders("threading.reply_senders_by_endpoint", text)?);
        }
        Ok(Policy {
            reopen,
            sms_follow_up_window: window(self.placement.sms_follow_up_window),
            messenger_follow_up_window: window(self.placement.messenger_follow_up_window),
            reply_senders: senders("threading.reply_senders", &t.reply_senders)?,
            reply_senders_by_endpoint: by_endpoint,
            late_parent_window: window(t.late_parent_window),
        })
    }
}

/// Durations written as text: "100ms", "30s", "7d".
mod duration_text {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_defaults_load_and_are_the_documented_ones() {
        let s = Settings::load(&Overrides::default(), &[]).unwrap();
        assert_eq!(s.kafka.topics.inputs(), ["inbound.email", "inbound.sms", "inbound.messenger"]);
        assert_eq!(s.kafka.topics.dlq, "inbound.dlq");
        assert_eq!(s.worker.max_record_bytes, 10 * 1024 * 1024);
        assert_eq!(s.worker.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(s.worker.batch_max_bytes, 1024 * 1024);
        assert!(s.worker.test_panic_at.is_empty() && s.worker.test_panic_placing.is_empty());
        assert_eq!(s.worker.failure_attempts, 3);
        assert_eq!(
            (s.worker.shared_transactions, s.worker.shared_batch_fraction, s.worker.shared_lock_timeout),
            (2, 0.2, Duration::from_millis(200))
        );
        let policy = s.policy().unwrap();
        assert_eq!(policy.reopen, vec![Status::Waiting, Status::Solved]);
        assert_eq!(policy.sms_follow_up_window, Some(chrono::Duration::days(7)));
    }

    #[test]
    fn generic_environment_variables_and_rdkafka_properties_override_the_file() {
        let s = Settings::load(
            &Overrides::default(),
            &env(&[
                ("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "42"),
                ("SWITCHBOARD_RDKAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ]),
        )
        .unwrap();
        assert_eq!(s.worker.batch_max_records, 42);
        assert_eq!(s.kafka.properties.get("security.protocol").map(String::as_str), Some("SASL_SSL"));
    }

    #[test]
    fn overrides_win_over_everything() {
        let o = Overrides {
            database_url: Some("postgres://x@h/db".into()),
            group_id: Some("g2".into()),
            topic_dlq: Some("dead".into()),
            kafka_properties: vec![("client.id".into(), "me".into())],
            ..Overrides::default()
        };
        let s = Settings::load(&o, &[]).unwrap();
        assert_eq!(s.database.url, "postgres://x@h/db");
        assert_eq!(s.kafka.group_id, "g2");
        assert_eq!(s.kafka.topics.dlq, "dead");
        assert_eq!(s.kafka.properties["client.id"], "me");
        assert!(!format!("{s:?}").contains("postgres://x@h/db"), "the URL is not printed");
    }

    #[test]
    fn debug_output_never_shows_a_password_or_a_sasl_secret() {
        let o = Overrides {
            database_url: Some("postgres://app:pg-s3cret@h/db".into()),
            kafka_properties: vec![
                ("sasl.password".into(), "kafka-s3cret".into()),
                ("ssl.key.password".into(), "key-s3cret".into()),
                ("sasl.username".into(), "app".into()),
            ],
            ..Overrides::default()
        };
        let s = Settings::load(&o, &[]).unwrap();
        for printed in [format!("{s:?}"), format!("{s:#?}"), format!("{o:?}"), format!("{:?}", s.kafka)] {
            assert!(!printed.contains("s3cret"), "{printed}");
            assert!(printed.contains("sasl.username"), "non-secret settings still print: {printed}");
        }
    }

    #[test]
    fn reopening_closed_conversations_is_refused() {
        let mut s = Settings::load(&Overrides::default(), &[]).unwrap();
        s.placement.reopen_statuses = vec!["waiting".into(), "closed".into()];
        assert!(matches!(s.policy(), Err(SettingsError::Invalid(m)) if m.contains("never reopened")));
        s.placement.reopen_statuses = vec!["snoozed".into()];
        assert!(matches!(s.policy(), Err(SettingsError::Invalid(m)) if m.contains("unknown status")));
    }

    #[test]
    fn the_reopen_statuses_can_be_set_from_the_environment_as_a_list() {
        let s = Settings::load(
            &Overrides::default(),
            &env(&[("SWITCHBOARD__PLACEMENT__REOPEN_STATUSES", "waiting,pending")]),
        )
        .unwrap();
        assert_eq!(s.policy().unwrap().reopen, vec![Status::Waiting, Status::Pending]);
    }

    #[test]
    fn a_zero_window_disables_follow_ups() {
        let mut s = Settings::load(&Overrides::default(), &[]).unwrap();
        s.placement.sms_follow_up_window = Duration::ZERO;
        assert_eq!(s.policy().unwrap().sms_follow_up_window, None);
    }

    #[test]
    fn a_batch_larger_than_the_buffer_is_refused() {
        let err = Settings::load(&Overrides::default(), &env(&[("SWITCHBOARD__WORKER__BATCH_MAX_BYTES", "999999999")]));
        assert!(matches!(err, Err(SettingsError::Invalid(m)) if m.contains("fit")));
    }

    #[test]
    fn shared_transactions_leave_connections_for_batches_placed_alone_and_never_wait_forever() {
        let too_many = env(&[("SWITCHBOARD__WORKER__SHARED_TRANSACTIONS", "16")]);
        assert!(
            matches!(Settings::load(&Overrides::default(), &too_many), Err(SettingsError::Invalid(m)) if m.contains("below database.max_connections"))
        );
        let forever = env(&[("SWITCHBOARD__WORKER__SHARED_LOCK_TIMEOUT", "0s")]);
        assert!(
            matches!(Settings::load(&Overrides::default(), &forever), Err(SettingsError::Invalid(m)) if m.contains("shared_lock_timeout"))
        );
        for bad in ["0", "1.5", "NaN"] {
            let fraction = env(&[("SWITCHBOARD__WORKER__SHARED_BATCH_FRACTION", bad)]);
            let refused = Settings::load(&Overrides::default(), &fraction);
            assert!(matches!(refused, Err(SettingsError::Invalid(m)) if m.contains("shared_batch_fraction")), "{bad}");
        }
        let half = env(&[("SWITCHBOARD__WORKER__SHARED_BATCH_FRACTION", "0.5")]);
        assert_eq!(Settings::load(&Overrides::default(), &half).unwrap().worker.shared_batch_fraction, 0.5);
        let off = env(&[
            ("SWITCHBOARD__WORKER__SHARED_TRANSACTIONS", "0"),
            ("SWITCHBOARD__WORKER__SHARED_LOCK_TIMEOUT", "0s"),
        ]);
        assert_eq!(Settings::load(&Overrides::default(), &off).unwrap().worker.shared_transactions, 0);
    }

    #[test]
    fn the_http_endpoint_listens_on_the_default_address_or_is_off() {
        let s = Settings::load(&Overrides::default(), &[]).unwrap();
        assert_eq!(s.http.listen_addr().unwrap(), Some("127.0.0.1:9464".parse().unwrap()));
        let off = Overrides { http_addr: Some("off".into()), ..Overrides::default() };
        assert_eq!(Settings::load(&off, &[]).unwrap().http.listen_addr().unwrap(), None);
        let bad = Overrides { http_addr: Some("localhost".into()), ..Overrides::default() };
        assert!(matches!(Settings::load(&bad, &[]), Err(SettingsError::Invalid(m)) if m.contains("http.addr")));
    }

    #[test]
    fn an_unknown_key_is_an_error() {
        let err = Settings::load(&Overrides::default(), &env(&[("SWITCHBOARD__WORKER__BATCH_SIZE", "1")]));
        assert!(err.is_err());
    }
}
