//! Publishes the outbox: one worker at a time (the one holding the outbox
//! lock, [`crate::store::outbox::OutboxLeader`]) reads the oldest rows in
//! `seq` order, sends them with the idempotent producer, and deletes them
//! once the broker has acknowledged every one. A crash between the two
//! sends them again with the same ids; nothing is lost, and a consumer that
//! drops repeated ids sees each decision once, in order.
//!
//! It runs beside placement, not in it: a broker outage delays events (the
//! outbox grows, `/readyz` says so past its bounds) and never stops a batch.

use crate::config::Settings;
use crate::events::EventType;
use crate::kafka::EventProducer;
use crate::store::outbox::OutboxLeader;
use crate::store::Store;
use crate::telemetry::Telemetry;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often a worker that is not the publisher tries to become it, and how
/// often an empty outbox is looked at again.
const IDLE: Duration = Duration::from_millis(50);
const NOT_LEADER: Duration = Duration::from_secs(1);
/// How often the outbox is counted for the metrics and `/readyz`.
const COUNT_EVERY: Duration = Duration::from_secs(2);
/// A failing round is logged once, then at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct Publisher {
    store: Store,
    producer: EventProducer,
    topic: String,
    batch: usize,
    telemetry: Arc<Telemetry>,
}

impl Publisher {
    pub(crate) fn new(settings: &Settings, store: Store, telemetry: Arc<Telemetry>) -> anyhow::Result<Publisher> {
        let e = &settings.events;
        telemetry.outbox_alarm(e.outbox_alarm_rows, e.outbox_alarm_age);
        Ok(Publisher {
            store,
            producer: EventProducer::new(&settings.events_kafka())?,
            topic: settings.kafka.topics.events.clone(),
            batch: e.publish_batch,
            telemetry,
        })
    }

    /// Publishes until `stop` turns true, then goes on until the outbox is
    /// empty or `drain` has passed (what is left goes out at the next start).
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>, drain: Duration) {
        let counter = tokio::spawn(count(self.store.clone(), self.telemetry.clone(), stop.clone()));
        let mut leader: Option<OutboxLeader> = None;
        let mut stopping_since: Option<Instant> = None;
        let mut last_log: Option<Instant> = None;
        loop {
            // A sender gone without a word (the run failed early) is a stop too.
            if stopping_since.is_none() && (*stop.borrow() || stop.has_changed().is_err()) {
                stopping_since = Some(Instant::now());
            }
            if stopping_since.is_some_and(|t| t.elapsed() > drain) {
                tracing::warn!("Stopping with events still in the outbox; they are published at the next start.");
                break;
            }
            if leader.is_none() {
                match self.store.outbox_leader().await {
                    Ok(Some(l)) => {
                        tracing::info!("This worker publishes the events outbox.");
                        leader = Some(l);
                    }
                    // Another worker publishes: wait for it to go away.
                    Ok(None) if stopping_since.is_some() => break,
                    Ok(None) => {
                        let _ = tokio::time::timeout(NOT_LEADER, stop.changed()).await;
                        continue;
                    }
                    Err(e) => {
                        log_rate_limited(&mut last_log, &format!("cannot reach Postgres for the events outbox: {e}"));
                        let _ = tokio::time::timeout(NOT_LEADER, stop.changed()).await;
                        continue;
                    }
                }
            }
            let Some(l) = leader.as_mut() else { continue };
            match self.round(l).await {
                Ok(0) if stopping_since.is_some() => break,
                Ok(0) => {
                    let _ = tokio::time::timeout(IDLE, stop.changed()).await;
                }
                Ok(_) => {}
                Err(e) => {
                    log_rate_limited(&mut last_log, &e);
                    // The connection may be gone with the lock: take it anew.
                    leader = None;
                    let _ = tokio::time::timeout(NOT_LEADER, stop.changed()).await;
                }
            }
        }
        counter.abort();
    }

    /// Publishes the oldest rows; how many events it published.
    async fn round(&self, leader: &mut OutboxLeader) -> Result<usize, String> {
        let rows = leader.take(self.batch).await.map_err(|e| format!("reading the events outbox: {e}"))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let records: Vec<(uuid::Uuid, &str)> =
            rows.iter().flat_map(|r| r.events.iter().map(|e| (e.key, e.json.as_str()))).collect();
        let results = self.producer.send_in_order(&self.topic, &records).await;
        // Only rows whose every event the broker acknowledged, in order, are
        // deleted: what follows a failure goes again, with the same ids.
        let mut acked = results.iter().take_while(|r| r.is_ok()).count();
        let mut done = Vec::new();
        for row in &rows {
            if row.events.len() > acked {
                break;
            }
            acked -= row.events.len();
            done.push(row);
        }
        if !done.is_empty() {
            let seqs: Vec<i64> = done.iter().map(|r| r.seq).collect();
            leader.delete(&seqs).await.map_err(|e| format!("deleting published events from the outbox: {e}"))?;
            let now = chrono::Utc::now();
            let waited = done.iter().flat_map(|r| {
                let secs = (now - r.created_at).as_seconds_f64();
                r.events.iter().map(move |_| secs)
            });
            self.telemetry.events_acknowledged(waited);
            let stats = &self.telemetry.stats;
            for kind in EventType::ALL {
                let n = done.iter().flat_map(|r| &r.events).filter(|e| e.kind == kind.as_str()).count() as u64;
                if n > 0 {
                    stats.events_published(kind, n);
                }
            }
        }
        match results.into_iter().find_map(Result::err) {
            Some(e) => Err(format!("publishing events to {}: {e}", self.topic)),
            None => Ok(records.len()),
        }
    }
}

/// Counts the outbox for the metrics and `/readyz`, on every worker.
async fn count(store: Store, telemetry: Arc<Telemetry>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Ok((rows, oldest)) = store.outbox_size().await {
            telemetry.outbox(rows, oldest);
        }
        if tokio::time::timeout(COUNT_EVERY, stop.wait_for(|s| *s)).await.is_ok() {
            return;
        }
    }
}

fn log_rate_limited(last: &mut Option<Instant>, message: &str) {
    if last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
        *last = Some(Instant::now());
        tracing::warn!("{message}; events wait in the outbox and go out when this is fixed.");
    }
}
