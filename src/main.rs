//! The `switchboard` command: parses the command line and calls the library.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::str::FromStr as _;
use switchboard::cli::{parse_property, ServiceArgs};
use switchboard::kafka::ensure_topics;
use switchboard::store::Store;
use switchboard::worker::{self, Mode};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "Places inbound customer messages from Kafka into conversations in Postgres."
)]
struct Cli {
    #[command(flatten)]
    services: ServiceArgs,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = cli.services.start()?;

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
