//! Shared helpers for the flow-control tests: publishing to a chosen
//! partition, waiting on a condition, signalling the worker process.

use crate::harness::TestEnv;
use futures::future::join_all;
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::future::Future;
use std::time::Duration;
use switchboard_load::sample::SampleRecord;
use tokio::process::Child;

/// A producer that can address partitions and send records up to 12 MiB.
pub fn producer(env: &TestEnv) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &env.settings.kafka.bootstrap_servers)
        .set("message.max.bytes", "12582912")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Publishes `records` to `partition` of their channel's topic, in order.
pub async fn publish_to_partition(env: &TestEnv, producer: &FutureProducer, partition: i32, records: &[SampleRecord]) {
    for chunk in records.chunks(500) {
        let sends = chunk.iter().map(|r| {
            let topic = env.topic(r.channel);
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for h in &r.headers {
                headers = headers.insert(KafkaHeader { key: &h.key, value: h.value.as_deref() });
            }
            async move {
                let record: FutureRecord<'_, [u8], [u8]> =
                    FutureRecord::to(&topic).partition(partition).payload(r.value.as_slice()).headers(headers);
                producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("publish");
            }
        });
        join_all(sends).await;
    }
}

/// Polls `condition` every 200 ms until it holds; panics after `limit`
/// naming `what`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends a signal (`TERM`, `KILL`) to the worker process.
pub fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().expect("kill");
    assert!(status.success());
}

/// Peak resident memory of a live process in KiB (`VmHWM`); `None` once
/// it has exited.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Messages stored from `partition` of `topic`.
pub async fn stored_from(env: &TestEnv, topic: &str, partition: i32) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messages WHERE kafka_topic = $1 AND kafka_partition = $2")
        .bind(topic)
        .bind(partition)
        .fetch_one(&env.pool)
        .await
        .expect("count")
}

/// The worker's JSON log lines (it runs with `--json-logs`).
pub fn json_logs(stderr: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stderr).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The log lines whose message starts with `prefix` (JSON lines carry the
/// event's fields at the top level, beside `message`).
pub fn logged<'a>(lines: &'a [serde_json::Value], prefix: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with(prefix))).collect()
}

/// Backends of this test's database waiting on a lock (a batch blocked by
/// an agent's transaction).
pub async fn waiting_on_locks(env: &TestEnv) -> i64 {
    env.count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        .await
}

/// Whether every one of `partitions` of `topic` has exactly `n` messages stored.
pub async fn stored_from_each(env: &TestEnv, topic: &str, partitions: std::ops::Range<i32>, n: i64) -> bool {
    for p in partitions {
        if stored_from(env, topic, p).await != n {
            return false;
        }
    }
    true
}

/// The JSON log lines a running worker has written so far, read live from
/// its stderr (the worker must run with `--json-logs` and piped stderr).
#[derive(Clone, Default)]
pub struct LiveLog(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl LiveLog {
    pub fn follow(child: &mut Child) -> LiveLog {
        use tokio::io::AsyncBufReadExt as _;
        let log = LiveLog::default();
        let lines = log.0.clone();
        let stderr = child.stderr.take().expect("stderr is piped");
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(value) = serde_json::from_str(&line) {
                    lines.lock().unwrap().push(value);
                }
            }
        });
        log
    }

    /// The lines logged so far whose message starts with `prefix`.
    pub fn find(&self, prefix: &str) -> Vec<serde_json::Value> {
        let lines = self.0.lock().unwrap();
        logged(&lines, prefix).into_iter().cloned().collect()
    }
}
