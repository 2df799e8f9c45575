//! What the `switchboard` and `switchboard-load` commands share: the options
//! that say where the services are (each also read from the environment), and
//! the log setup. One definition, so both tools accept the same flags.

use crate::config::{Overrides, Settings, SettingsError};
use std::path::PathBuf;

/// The services' addresses and names, as global options of a command.
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    /// A TOML file layered over config/default.toml.
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Postgres URL.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Kafka bootstrap servers.
    #[arg(long, global = true, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// Consumer group id.
    #[arg(long, global = true, env = "SWITCHBOARD_GROUP_ID")]
    pub group_id: Option<String>,
    #[arg(long, global = true, env = "SWITCHBOARD_TOPIC_EMAIL")]
    pub topic_email: Option<String>,
    #[arg(long, global = true, env = "SWITCHBOARD_TOPIC_SMS")]
    pub topic_sms: Option<String>,
    #[arg(long, global = true, env = "SWITCHBOARD_TOPIC_MESSENGER")]
    pub topic_messenger: Option<String>,
    #[arg(long, global = true, env = "SWITCHBOARD_TOPIC_DLQ")]
    pub topic_dlq: Option<String>,
    #[arg(long, global = true, env = "SWITCHBOARD_TOPIC_EVENTS")]
    pub topic_events: Option<String>,
    /// A librdkafka property, `name=value`; repeatable.
    #[arg(long = "kafka-property", global = true, value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,
    /// Where `run` serves /metrics, /healthz and /readyz (host:port, or `off`).
    #[arg(long, global = true, env = "SWITCHBOARD_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// Log as JSON lines instead of text (same as SWITCHBOARD_LOG_FORMAT=json).
    #[arg(long, global = true)]
    pub json_logs: bool,
    /// `text` (the default) or `json`.
    #[arg(long, global = true, env = "SWITCHBOARD_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

impl ServiceArgs {
    /// Starts logging as asked, then layers these options and the process's
    /// environment over the configuration files.
    pub fn start(&self) -> Result<Settings, SettingsError> {
        init_logging(self.json_logs || self.log_format.as_deref() == Some("json"));
        let overrides = Overrides {
            config_file: self.config.clone(),
            database_url: self.database_url.clone(),
            bootstrap_servers: self.bootstrap_servers.clone(),
            group_id: self.group_id.clone(),
            topic_email: self.topic_email.clone(),
            topic_sms: self.topic_sms.clone(),
            topic_messenger: self.topic_messenger.clone(),
            topic_dlq: self.topic_dlq.clone(),
            topic_events: self.topic_events.clone(),
            http_addr: self.http_addr.clone(),
            kafka_properties: self.kafka_properties.clone(),
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        Settings::load(&overrides, &env)
    }
}

/// `name=value`, as `--kafka-property` and `--set-header` take it.
pub fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {s:?}"))
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        // One object per line with the span fields flattened in, so a log
        // pipeline can filter on topic, partition, offset or ce_id.
        builder.json().flatten_event(true).with_current_span(true).init();
    } else {
        // Colours only for a person at a terminal; files and pipes get plain text.
        use std::io::IsTerminal as _;
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
