//! The `switchboard-load` command: synthetic traffic (with agents acting on
//! the desk meanwhile), the demo records, and the benchmark's ceiling reader.
//! It takes the same service options as `switchboard`.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use switchboard::cli::ServiceArgs;
use switchboard::kafka::Publisher;
use switchboard_load::{agents, plot, publish, sample, Generator, Mix};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-load",
    version,
    about = "Publishes synthetic and demo traffic for Switchboard, and measures the broker's read ceiling."
)]
struct Cli {
    #[command(flatten)]
    services: ServiceArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Publish synthetic traffic for a load test: a steady rate, a mix of
    /// channels and of special cases, reproducible by seed.
    Traffic(Box<TrafficArgs>),
    /// Publish the demo traffic (ten records of every type) to the input topics.
    Sample,
    /// Benchmark ceiling: read the input topics to their end with librdkafka
    /// alone (no group, no Postgres) and print the rate as JSON.
    Ceiling,
    /// Delete the five topics the settings name (input, dead letters,
    /// events): a benchmark's phase leaves none behind, as a broker spends
    /// CPU on every partition it holds.
    DeleteTopics,
}

#[derive(clap::Args, Debug)]
struct TrafficArgs {
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
    #[arg(long, default_value = "sms=40,messenger=30,email=30", value_parser = Mix::parse_channels)]
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = cli.services.start()?;
    match cli.command {
        Command::Traffic(args) => traffic(&settings, *args).await,
        Command::Sample => {
            let publisher = Publisher::new(&settings.kafka)?;
            let records = sample::demo_traffic();
            for r in &records {
                publisher
                    .publish(r.topic(&settings.kafka.topics), r.key.as_deref(), Some(&r.value), &r.headers)
                    .await?;
            }
            tracing::info!(records = records.len(), "Sample traffic published.");
            Ok(())
        }
        Command::Ceiling => {
            let t = &settings.kafka.topics;
            let kafka = settings.kafka.clone();
            let topics = [t.email.clone(), t.sms.clone(), t.messenger.clone()];
            let rate = tokio::task::spawn_blocking(move || {
                switchboard::kafka::consume_to_end(&kafka, &topics.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .await??;
            println!("{}", serde_json::to_string(&rate)?);
            Ok(())
        }
        Command::DeleteTopics => {
            let t = &settings.kafka.topics;
            switchboard::kafka::delete_topics(&settings.kafka, &[&t.email, &t.sms, &t.messenger, &t.dlq])
                .await
                .context("deleting the input and dead-letter topics")?;
            switchboard::kafka::delete_topics(&settings.events_kafka(), &[&t.events])
                .await
                .context("deleting the events topic")
        }
    }
}

async fn traffic(settings: &switchboard::config::Settings, a: TrafficArgs) -> anyhow::Result<()> {
    let mix = Mix {
        customers: a.customers,
        seed: a.seed,
        keyed: !a.unkeyed,
        channels: a.mix,
        duplicates: a.duplicates,
        siblings: a.siblings,
        replies: a.replies,
        automatic: a.automatic,
        malformed: a.malformed,
        email_bytes: a.email_bytes,
    };
    mix.validate().map_err(anyhow::Error::msg)?;
    anyhow::ensure!(a.rate.is_none_or(|r| r > 0.0), "--rate must be above zero");
    anyhow::ensure!(a.agents.is_none_or(|r| r > 0.0), "--agents must be above zero");
    let plan = publish::Plan {
        records: a.records.or(if a.duration.is_none() { Some(100_000) } else { None }),
        duration: a.duration,
        rate: a.rate,
        metrics_addr: Some(a.metrics_addr).filter(|addr| addr != "off"),
        follow: a.follow,
    };
    let publisher = Publisher::new(&settings.kafka)?;
    let t = &settings.kafka.topics;
    publisher
        .connect(&[t.email.clone(), t.sms.clone(), t.messenger.clone()], Duration::from_secs(30))
        .await
        .context("connecting to the broker (KAFKA_BOOTSTRAP_SERVERS) and the input topics")?;
    let (stop_agents, stopped) = tokio::sync::watch::channel(false);
    let desk = match a.agents {
        Some(rate) => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(&settings.database.url)
                .await
                .context("the agents connect to Postgres (DATABASE_URL)")?;
            let store = switchboard::store::Store::from_pool(pool);
            Some(tokio::spawn(agents::run(store, rate, a.seed, stopped)))
        }
        None => None,
    };
    let summary = publish::run(&publisher, &settings.kafka.topics, Generator::new(mix), plan).await;
    print!("{}", summary.render());
    let _ = stop_agents.send(true);
    if let Some(desk) = desk {
        print!("{}", desk.await?.render());
    }
    if let Some(path) = a.plot {
        plot::draw(&path, &summary.samples)?;
        println!("plot written to {}", path.display());
    }
    anyhow::ensure!(summary.failed == 0, "{} records could not be published", summary.failed);
    Ok(())
}
