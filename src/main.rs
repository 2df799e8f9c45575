//! The `switchboard` command: parses the command line and calls the library.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::str::FromStr as _;
use switchboard::config::{Overrides, Settings};
use switchboard::kafka::{ensure_topics, Publisher};
use switchboard::store::Store;
use switchboard::worker::{self, Mode};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "Places inbound customer messages from Kafka into conversations in Postgres."
)]
struct Cli {
    /// A TOML file layered over config/default.toml.
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Postgres URL.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Kafka bootstrap servers.
    #[arg(long, global = true, env = "KAFKA_BOOTSTRAP_SERVERS")]
    bootstrap_servers: Option<String>,
    /// Consumer group id.
    #[arg(long, global = true, env = "SWITCHBOARD_GROUP_ID")]
    group_id: Option<String>,
    #[arg(long, global = true, env = "SWITCHBOARD_TOPIC_EMAIL")]
    topic_email: Option<String>,
    #[arg(long, global = true, env = "SWITCHBOARD_TOPIC_SMS")]
    topic_sms: Option<String>,
    #[arg(long, global = true, env = "SWITCHBOARD_TOPIC_MESSENGER")]
    topic_messenger: Option<String>,
    #[arg(long, global = true, env = "SWITCHBOARD_TOPIC_DLQ")]
    topic_dlq: Option<String>,
    #[arg(long, global = true, env = "SWITCHBOARD_TOPIC_EVENTS")]
    topic_events: Option<String>,
    /// A librdkafka property, `name=value`; repeatable.
    #[arg(long = "kafka-property", global = true, value_parser = parse_property)]
    kafka_properties: Vec<(String, String)>,
    /// Where `run` serves /metrics, /healthz and /readyz (host:port, or `off`).
    #[arg(long, global = true, env = "SWITCHBOARD_HTTP_ADDR")]
    http_addr: Option<String>,
    /// Log as JSON lines instead of text (same as SWITCHBOARD_LOG_FORMAT=json).
    #[arg(long, global = true)]
    json_logs: bool,
    /// `text` (the default) or `json`.
    #[arg(long, global = true, env = "SWITCHBOARD_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply the database migrations (as the schema's owner).
    Migrate,
    /// Give a Postgres role what `run` needs and nothing more (as the
    /// schema's owner, after `migrate`): docs/operations.md, "Database roles".
    Grant {
        /// The role `run` connects as.
        #[arg(long)]
        role: String,
        /// Print the statements instead of running them.
        #[arg(long)]
        print: bool,
    },
    /// Consume the input topics and place every message.
    Run {
        /// Exit once every assigned partition is consumed to the end it had at start.
        #[arg(long)]
        stop_at_end: bool,
        /// How to print the counters at exit: `json`, or `table` for a person.
        #[arg(long, default_value = "json", value_parser = ["json", "table"])]
        summary: String,
    },
    /// Create the input and dead-letter topics where missing.
    CreateTopics {
        #[arg(long, default_value_t = 3)]
        partitions: i32,
    },
    /// Publish realistic sample traffic of every type to the input topics.
    PublishSample,
    /// Print the conversation events (docs/events.md), one line each: those
    /// on the topic now, or with --follow the new ones as they come.
    Events {
        /// Wait for new events and print them as they come (Ctrl-C ends).
        #[arg(long)]
        follow: bool,
        /// The CloudEvents JSON, one per line, instead of text.
        #[arg(long)]
        json: bool,
        /// Stop after this many.
        #[arg(long, default_value_t = 100_000)]
        max: usize,
    },
    /// Print every conversation and the totals.
    Report,
    /// Print the records on the dead-letter topic: where each came from and why.
    DeadLetters {
        /// Stop reading after this many.
        #[arg(long, default_value_t = 100_000)]
        max: usize,
        #[command(flatten)]
        filter: LetterFilter,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Print only the count per reason.
        #[arg(long)]
        counts: bool,
        /// Show every dead letter of this source (`topic/partition/offset`) in full:
        /// headers and a safe preview of the payload.
        #[arg(long, value_name = "SOURCE")]
        show: Option<String>,
    },
    /// Send dead letters back to their source topic (original key, value and
    /// headers, plus a redrive counter).
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["reason", "source", "source_topic", "all"])))]
    Redrive {
        #[command(flatten)]
        filter: LetterFilter,
        /// A dead letter's `dlq_source` (`topic/partition/offset`); repeatable.
        #[arg(long)]
        source: Vec<String>,
        /// Every dead letter (subject to the other filters).
        #[arg(long)]
        all: bool,
        /// Set a header on the way, `name=value` (repeatable): a fix that makes the record valid.
        #[arg(long = "set-header", value_parser = parse_property)]
        set_headers: Vec<(String, String)>,
        /// Records redriven this many times already are skipped unless --force.
        #[arg(long, default_value_t = 3)]
        limit: u32,
        #[arg(long)]
        force: bool,
        /// Print what would be sent without sending.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move the group's committed offsets, like `kafka-consumer-groups.sh
    /// --reset-offsets`. Refused while the group has live members.
    #[command(group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
    Replay {
        /// The group to move (default: the configured group id).
        #[arg(long)]
        group: Option<String>,
        /// A topic to move (repeatable; default: the three input topics).
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// Only these partitions of each topic (repeatable).
        #[arg(long = "partition")]
        partitions: Vec<i32>,
        #[arg(long)]
        to_earliest: bool,
        #[arg(long)]
        to_latest: bool,
        #[arg(long, value_name = "OFFSET")]
        to_offset: Option<i64>,
        /// RFC 3339, e.g. 2026-11-25T09:00:00Z.
        #[arg(long, value_name = "TIME")]
        to_datetime: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// Move by N records from the committed offset (negative: back).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        shift_by: Option<i64>,
        /// Print the moves without committing them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Benchmark ceiling: read the input topics to their end with librdkafka
    /// alone (no group, no Postgres) and print the rate as JSON.
    #[command(hide = true)]
    ConsumeCeiling,
    /// Publish synthetic traffic for a load test: a steady rate, a mix of
    /// channels and of special cases, reproducible by seed.
    Load {
        /// How many records (default 100000 unless --duration is given).
        #[arg(long)]
        records: Option<u64>,
        /// How long to publish, e.g. 5m (with --records: whichever ends first).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
        /// Records per second, steady; without it, as fast as the broker takes them.
        #[arg(long)]
        rate: Option<f64>,
        /// Channel weights of new messages.
        #[arg(long, default_value = "sms=40,messenger=30,email=30", value_parser = switchboard::loadgen::Mix::parse_channels)]
        mix: (u32, u32, u32),
        /// Share (0-1) of gateway retries: an earlier record again.
        #[arg(long, default_value_t = 0.0)]
        duplicates: f64,
        /// Share of copies of an earlier email to a second inbox (siblings).
        #[arg(long, default_value_t = 0.0)]
        siblings: f64,
        /// Share of replies to earlier messages (R1; R2 once agents closed the conversation).
        #[arg(long, default_value_t = 0.0)]
        replies: f64,
        /// Share of automatic mail (out-of-office replies).
        #[arg(long, default_value_t = 0.0)]
        automatic: f64,
        /// Share of malformed records (dead-lettered).
        #[arg(long, default_value_t = 0.0)]
        malformed: f64,
        /// Pad each email's raw source to about this many bytes.
        #[arg(long, default_value_t = 0)]
        email_bytes: usize,
        /// Distinct customers per channel.
        #[arg(long, default_value_t = 5_000)]
        customers: u64,
        /// The same seed publishes the same records; another seed, new ones.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Publish without keys, like a misbehaving gateway: one customer's
        /// messages then spread over every partition.
        #[arg(long)]
        unkeyed: bool,
        /// Act as the agent desktop meanwhile, this many actions a second,
        /// with the contract's SQL on DATABASE_URL: set conversations
        /// waiting and solved, close and merge them, add channels (the seed
        /// makes the same choices).
        #[arg(long)]
        agents: Option<f64>,
        /// Draw the publish rate (and a running worker's lag and placed/s) into this SVG file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// A worker's metrics endpoint to sample for the summary and the plot.
        #[arg(long, default_value = "127.0.0.1:9464")]
        metrics_addr: String,
        /// After publishing, follow the worker's backlog at most this long.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        follow: std::time::Duration,
    },
}

/// The dead-letter filters shared by `dead-letters` and `redrive`.
#[derive(clap::Args, Debug)]
struct LetterFilter {
    /// Only this reason code (repeatable).
    #[arg(long)]
    reason: Vec<String>,
    /// Only dead letters of records from this topic.
    #[arg(long)]
    source_topic: Option<String>,
    /// Only dead letters since this time: RFC 3339, or a duration ago (`2h`).
    #[arg(long, value_parser = parse_since)]
    since: Option<chrono::DateTime<chrono::Utc>>,
}

impl LetterFilter {
    fn to_filter(&self) -> switchboard::ops::dead_letters::Filter {
        switchboard::ops::dead_letters::Filter {
            reasons: self.reason.clone(),
            source_topic: self.source_topic.clone(),
            since: self.since,
        }
    }
}

fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let ago =
        humantime::parse_duration(s).map_err(|_| format!("expected RFC 3339 or a duration such as 2h, got {s:?}"))?;
    let ago = chrono::Duration::from_std(ago).map_err(|e| e.to_string())?;
    Ok(chrono::Utc::now() - ago)
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {s:?}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.json_logs || cli.log_format.as_deref() == Some("json"));
    let overrides = Overrides {
        config_file: cli.config.clone(),
        database_url: cli.database_url.clone(),
        bootstrap_servers: cli.bootstrap_servers.clone(),
        group_id: cli.group_id.clone(),
        topic_email: cli.topic_email.clone(),
        topic_sms: cli.topic_sms.clone(),
        topic_messenger: cli.topic_messenger.clone(),
        topic_dlq: cli.topic_dlq.clone(),
        topic_events: cli.topic_events.clone(),
        http_addr: cli.http_addr.clone(),
        kafka_properties: cli.kafka_properties.clone(),
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    let settings = Settings::load(&overrides, &env)?;

    match cli.command {
        Command::Migrate => {
            reachable(&settings.database.url).await?;
            let store = Store::connect_lazy(&settings.database.url, 2)?;
            store.migrate().await.context("applying migrations")?;
            tracing::info!("Migrations applied.");
        }
        Command::Grant { role, print } => {
            use switchboard::store::privileges;
            anyhow::ensure!(
                privileges::valid_role(&role),
                "--role must be a plain Postgres identifier (lower case letters, digits, _), not {role:?}"
            );
            if print {
                // Postgres's own default: the database named like the user.
                let database = sqlx::postgres::PgConnectOptions::from_str(&settings.database.url)
                    .map(|o| o.get_database().unwrap_or(o.get_username()).to_owned())
                    .unwrap_or_else(|_| "switchboard".to_owned());
                for statement in privileges::grant_statements(&role, &database) {
                    println!("{statement};");
                }
            } else {
                reachable(&settings.database.url).await?;
                let store = Store::connect_lazy(&settings.database.url, 1)?;
                let statements = store.grant(&role).await.context("granting (run this as the schema's owner)")?;
                tracing::info!(role, statements = statements.len(), "Granted what the worker needs.");
            }
        }
        Command::Run { stop_at_end, summary } => {
            let mode = if stop_at_end { Mode::StopAtEnd } else { Mode::Forever };
            let report = worker::run(&settings, mode, shutdown_signal()).await?;
            if summary == "table" {
                print!("{}", switchboard::ops::summary::table(&report.stats));
            } else {
                println!("{}", serde_json::to_string_pretty(&report.stats)?);
            }
        }
        Command::CreateTopics { partitions } => {
            let t = &settings.kafka.topics;
            ensure_topics(&settings.kafka, &[&t.email, &t.sms, &t.messenger, &t.dlq], partitions).await.with_context(
                || format!("creating topics on the Kafka broker at {}", settings.kafka.bootstrap_servers),
            )?;
            let events = settings.events_kafka();
            ensure_topics(&events, &[&t.events], partitions).await.with_context(|| {
                format!("creating the events topic on the Kafka broker at {}", events.bootstrap_servers)
            })?;
            tracing::info!(partitions, "Topics exist.");
        }
        Command::Events { follow, json, max } => {
            let events = settings.events_kafka();
            let topic = settings.kafka.topics.events.clone();
            let print = move |record: &switchboard::record::SourceRecord| {
                let text = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
                match serde_json::from_str::<switchboard::events::CloudEvent>(&text) {
                    Ok(e) if !json => println!("{}", switchboard::events::follow::line(&e)),
                    _ => println!("{text}"),
                }
            };
            if follow {
                let mut left = max;
                tokio::task::spawn_blocking(move || {
                    switchboard::kafka::follow_topic(&events, &topic, |r| {
                        print(r);
                        left -= 1;
                        left > 0
                    })
                })
                .await??;
            } else {
                let records = tokio::task::spawn_blocking(move || {
                    switchboard::kafka::read_topic(&events, &topic, max, std::time::Duration::from_secs(3))
                })
                .await??;
                records.iter().for_each(print);
            }
        }
        Command::PublishSample => {
            let publisher = Publisher::new(&settings.kafka)?;
            let records = switchboard::sample::demo_traffic();
            for r in &records {
                let topic = match r.channel {
                    "email" => &settings.kafka.topics.email,
                    "sms" => &settings.kafka.topics.sms,
                    _ => &settings.kafka.topics.messenger,
                };
                publisher.publish(topic, r.key.as_deref(), Some(&r.value), &r.headers).await?;
            }
            tracing::info!(records = records.len(), "Sample traffic published.");
        }
        Command::Load {
            records,
            duration,
            rate,
            mix,
            duplicates,
            siblings,
            replies,
            automatic,
            malformed,
            email_bytes,
            customers,
            seed,
            unkeyed,
            agents,
            plot,
            metrics_addr,
            follow,
        } => {
            use switchboard::loadgen::{self, publish};
            let mix = loadgen::Mix {
                customers,
                seed,
                keyed: !unkeyed,
                channels: mix,
                duplicates,
                siblings,
                replies,
                automatic,
                malformed,
                email_bytes,
            };
            mix.validate().map_err(anyhow::Error::msg)?;
            anyhow::ensure!(rate.is_none_or(|r| r > 0.0), "--rate must be above zero");
            let plan = publish::Plan {
                records: records.or(if duration.is_none() { Some(100_000) } else { None }),
                duration,
                rate,
                metrics_addr: Some(metrics_addr).filter(|a| a != "off"),
                follow,
            };
            anyhow::ensure!(agents.is_none_or(|r| r > 0.0), "--agents must be above zero");
            let publisher = Publisher::new(&settings.kafka)?;
            let (stop_agents, stopped) = tokio::sync::watch::channel(false);
            let desk = match agents {
                Some(rate) => {
                    let pool = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(2)
                        .connect(&settings.database.url)
                        .await
                        .with_context(|| "the agents connect to Postgres (DATABASE_URL)".to_owned())?;
                    let store = switchboard::store::Store::from_pool(pool);
                    Some(tokio::spawn(loadgen::agents::run(store, rate, seed, stopped)))
                }
                None => None,
            };
            let summary = publish::run(&publisher, &settings.kafka.topics, loadgen::Generator::new(mix), plan).await;
            print!("{}", summary.render());
            let _ = stop_agents.send(true);
            if let Some(desk) = desk {
                print!("{}", desk.await?.render());
            }
            if let Some(path) = plot {
                loadgen::plot::draw(&path, &summary.samples)?;
                println!("plot written to {}", path.display());
            }
            anyhow::ensure!(summary.failed == 0, "{} records could not be published", summary.failed);
        }
        Command::DeadLetters { max, filter, json, counts, show } => {
            use switchboard::ops::commands::{self, Listing};
            let listing = match (show, json) {
                (Some(source), _) => Listing::Show(source),
                (None, true) => Listing::Json,
                (None, false) => Listing::Lines { counts_only: counts },
            };
            commands::dead_letters(&settings, max, &filter.to_filter(), &listing, &mut std::io::stdout().lock())?;
        }
        Command::Redrive { filter, source, all: _, set_headers, limit, force, dry_run } => {
            let choice = switchboard::ops::redrive::Choice {
                filter: filter.to_filter(),
                sources: source,
                limit,
                force,
                set_headers,
                input_topics: Vec::new(),
            };
            let mut out = std::io::stdout();
            switchboard::ops::commands::redrive(&settings, choice, dry_run, &mut out).await?;
        }
        Command::Replay {
            group,
            topics,
            partitions,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            shift_by,
            dry_run,
        } => {
            use switchboard::ops::replay::Target;
            let target = match (to_earliest, to_latest, to_offset, to_datetime, shift_by) {
                (true, ..) => Target::Earliest,
                (_, true, ..) => Target::Latest,
                (_, _, Some(o), ..) => Target::Offset(o),
                (_, _, _, Some(t), _) => Target::Datetime(t.with_timezone(&chrono::Utc)),
                (.., Some(n)) => Target::ShiftBy(n),
                _ => anyhow::bail!("choose one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by"),
            };
            let group = group.unwrap_or_else(|| settings.kafka.group_id.clone());
            tokio::task::block_in_place(|| {
                let mut out = std::io::stdout().lock();
                switchboard::ops::commands::replay(&settings, &group, &topics, &partitions, target, dry_run, &mut out)
            })?;
        }
        Command::ConsumeCeiling => {
            let t = &settings.kafka.topics;
            let kafka = settings.kafka.clone();
            let topics = [t.email.clone(), t.sms.clone(), t.messenger.clone()];
            let rate = tokio::task::spawn_blocking(move || {
                switchboard::kafka::consume_to_end(&kafka, &topics.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .await??;
            println!("{}", serde_json::to_string(&rate)?);
        }
        Command::Report => {
            reachable(&settings.database.url).await?;
            let store = Store::connect_lazy(&settings.database.url, 2)?;
            print!("{}", store.report().await?);
        }
    }
    Ok(())
}

/// Fails with a sentence naming Postgres's address and the cause (never the
/// password) when it cannot be reached: sqlx's pool would only say that it
/// timed out.
async fn reachable(url: &str) -> anyhow::Result<()> {
    switchboard::diagnose::check_postgres(url, std::time::Duration::from_secs(10)).await?;
    Ok(())
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

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
