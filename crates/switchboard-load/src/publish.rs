//! Publishes a [`Generator`]'s stream at a steady rate (or as fast as the
//! producer takes it), shows progress, and samples once a second what was
//! published and, when a worker's `/metrics` answers, its lag and placed
//! messages, for the summary and the plot.

use super::{Generator, Kind};
use futures::stream::{FuturesUnordered, StreamExt as _};
use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::config::TopicSettings;
use switchboard::http::{family_sum, fetch};
use switchboard::kafka::Publisher;

/// How much to publish and how fast.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Stop after this many records...
    pub records: Option<u64>,
    /// ...or after this long, whichever comes first.
    pub duration: Option<Duration>,
    /// Records per second; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// A worker's metrics endpoint (`host:port`) to sample.
    pub metrics_addr: Option<String>,
    /// After publishing, keep sampling at most this long while the worker
    /// still has lag, so the plot shows the backlog draining.
    pub follow: Duration,
}

/// One second of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub at_secs: f64,
    pub published: u64,
    /// Sum of the worker's per-partition lag.
    pub lag: Option<f64>,
    /// The worker's messages placed so far (all rules).
    pub placed: Option<f64>,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub published: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub by_kind: BTreeMap<Kind, u64>,
    pub by_channel: BTreeMap<&'static str, u64>,
    pub samples: Vec<Sample>,
}

impl Summary {
    /// The end-of-run text.
    pub fn render(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut out = format!(
            "published {} records in {:.2} s ({:.0} records/s), {} failed\n",
            self.published,
            secs,
            self.published as f64 / secs,
            self.failed
        );
        let kinds: Vec<String> = self.by_kind.iter().map(|(k, n)| format!("{}={n}", k.as_str())).collect();
        let channels: Vec<String> = self.by_channel.iter().map(|(c, n)| format!("{c}={n}")).collect();
        out.push_str(&format!("kinds: {}\nchannels: {}\n", kinds.join(" "), channels.join(" ")));
        if let Some(e) = &self.first_error {
            out.push_str(&format!("first failure: {e}\n"));
        }
        if let Some(last) = self.samples.iter().rev().find(|s| s.lag.is_some()) {
            out.push_str(&format!(
                "worker: lag {:.0} records, {:.0} messages placed in total\n",
                last.lag.unwrap_or(0.0),
                last.placed.unwrap_or(0.0)
            ));
        }
        out
    }
}

/// At most this many records wait for the broker's acknowledgement.
const IN_FLIGHT: usize = 5_000;

/// Publishes per `plan` and returns the summary.
pub async fn run(publisher: &Publisher, topics: &TopicSettings, mut generator: Generator, plan: Plan) -> Summary {
    let started = Instant::now();
    let published = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(sample(started, published.clone(), plan.clone(), samples.clone(), done_rx));
    let progress = Progress::new(&plan);

    let mut summary = Summary::default();
    let mut sent = 0u64;
    let mut in_flight = FuturesUnordered::new();
    loop {
        let elapsed = started.elapsed();
        let finished = plan.records.is_some_and(|n| sent >= n) || plan.duration.is_some_and(|d| elapsed >= d);
        if finished && in_flight.is_empty() {
            break;
        }
        let allowed = plan.rate.map_or(u64::MAX, |r| (r * elapsed.as_secs_f64()) as u64 + 1);
        if !finished && sent < allowed && in_flight.len() < IN_FLIGHT {
            let (kind, record) = generator.next_record();
            *summary.by_kind.entry(kind).or_default() += 1;
            *summary.by_channel.entry(record.channel).or_default() += 1;
            let topic = record.topic(topics).to_owned();
            let publisher = publisher.clone();
            in_flight.push(async move {
                publisher.publish(&topic, record.key.as_deref(), Some(&record.value), &record.headers).await
            });
            sent += 1;
            continue;
        }
        tokio::select! {
            Some(result) = in_flight.next() => match result {
                Ok(_) => {
                    let n = published.fetch_add(1, Ordering::Relaxed) + 1;
                    progress.update(n, started.elapsed());
                }
                Err(e) => {
                    summary.failed += 1;
                    summary.first_error.get_or_insert_with(|| e.to_string());
                }
            },
            // The rate allows the next record at a known instant; with no
            // rate (or the in-flight window full) only an acknowledgement
            // can free the loop, so there is nothing else to wait for.
            _ = tokio::time::sleep_until(next_due(started, sent, plan.rate)), if !finished && sent >= allowed => {}
        }
    }
    summary.elapsed = started.elapsed();
    summary.published = published.load(Ordering::Relaxed);
    progress.finish(summary.published, summary.elapsed);
    let _ = done_tx.send(true);
    let _ = sampler.await;
    summary.samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    summary
}

/// Once a second: what was published, and the worker's view if it answers.
async fn sample(
    started: Instant,
    published: Arc<AtomicU64>,
    plan: Plan,
    out: Arc<Mutex<Vec<Sample>>>,
    mut done: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut done_at: Option<Instant> = None;
    loop {
        tick.tick().await;
        let (lag, placed) = match &plan.metrics_addr {
            Some(addr) => match tokio::time::timeout(Duration::from_millis(800), fetch(addr, "/metrics")).await {
                Ok(Ok((200, body))) => (
                    Some(family_sum(&body, "switchboard_consumer_lag_records")),
                    Some(family_sum(&body, "switchboard_messages_placed_total")),
                ),
                _ => (None, None),
            },
            None => (None, None),
        };
        let s = Sample {
            at_secs: started.elapsed().as_secs_f64(),
            published: published.load(Ordering::Relaxed),
            lag,
            placed,
        };
        if let Ok(mut v) = out.lock() {
            v.push(s);
        }
        if *done.borrow_and_update() {
            let since = *done_at.get_or_insert_with(Instant::now);
            // Follow the backlog only while a worker answers and has one.
            if lag.is_none_or(|l| l == 0.0) || since.elapsed() >= plan.follow {
                return;
            }
        }
    }
}

/// A progress bar on a terminal, a plain line every 5 s otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Mutex<Instant>,
}

impl Progress {
    fn new(plan: &Plan) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None, last_line: Mutex::new(Instant::now()) };
        }
        let bar = match plan.records {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} records ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        Progress { bar: Some(bar), last_line: Mutex::new(Instant::now()) }
    }

    fn update(&self, published: u64, elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.set_position(published);
            return;
        }
        if let Ok(mut last) = self.last_line.lock() {
            if last.elapsed() >= Duration::from_secs(5) {
                *last = Instant::now();
                let rate = published as f64 / elapsed.as_secs_f64().max(1e-9);
                eprintln!(
                    "load: {published} records published in {:.0} s ({rate:.0} records/s)",
                    elapsed.as_secs_f64()
                );
            }
        }
    }

    fn finish(&self, published: u64, elapsed: Duration) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("load: done, {published} records in {:.1} s", elapsed.as_secs_f64()),
        }
    }
}

/// When the rate allows record number `sent + 1` (0-based `sent`).
fn next_due(started: Instant, sent: u64, rate: Option<f64>) -> tokio::time::Instant {
    let after = rate.filter(|r| *r > 0.0).map_or(Duration::ZERO, |r| Duration::from_secs_f64(sent as f64 / r));
    tokio::time::Instant::from_std(started + after)
}
