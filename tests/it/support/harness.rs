//! One small harness for every integration test: a fresh database (named by a
//! UUID, migrated, dropped afterwards) and fresh topics on the real broker,
//! plus helpers to publish, run the worker to the end, and read dead letters.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use std::collections::HashMap;
use std::time::Duration;
use switchboard::config::{Overrides, Settings};
use switchboard::decode::DecodeError;
use switchboard::kafka::{ensure_topics, read_topic, Publisher};
use switchboard::record::SourceRecord;
use switchboard::stats::Snapshot;
use switchboard::store::{Item, SourceRef, Store};
use switchboard::worker::{self, Mode};
use switchboard_load::sample::SampleRecord;
use uuid::Uuid;

pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn admin_url() -> String {
    std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn url_for(admin: &str, db: &str) -> String {
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    format!("{base}/{db}")
}

/// A test's settings: its database, its topics and group named by
/// `prefix`, no HTTP endpoint (tests run workers side by side; the one that
/// scrapes picks a port).
pub fn overrides(prefix: &str, database_url: &str, bootstrap_servers: &str) -> Overrides {
    Overrides {
        database_url: Some(database_url.to_owned()),
        bootstrap_servers: Some(bootstrap_servers.to_owned()),
        group_id: Some(format!("{prefix}-group")),
        topic_email: Some(format!("{prefix}.email")),
        topic_sms: Some(format!("{prefix}.sms")),
        topic_messenger: Some(format!("{prefix}.messenger")),
        topic_dlq: Some(format!("{prefix}.dlq")),
        topic_events: Some(format!("{prefix}.events")),
        http_addr: Some("off".into()),
        kafka_properties: vec![],
        config_file: None,
    }
}

/// A test's own database and topics.
pub struct TestEnv {
    pub settings: Settings,
    pub db_name: String,
    /// The server's admin URL, to drop the database afterwards.
    admin_url: String,
    pub pool: PgPool,
    pub publisher: Publisher,
}

impl TestEnv {
    /// A fresh environment with `partitions` partitions per topic.
    pub async fn new(partitions: i32) -> TestEnv {
        Self::with(partitions, |_| {}).await
    }

    /// Like `new`, letting the test adjust settings first.
    pub async fn with(partitions: i32, adjust: impl FnOnce(&mut Settings)) -> TestEnv {
        Self::on_postgres(&admin_url(), partitions, adjust).await
    }

    /// Like `with`, on another Postgres server (`admin` is a URL of one of
    /// its databases; the test's database is created beside it).
    pub async fn on_postgres(admin: &str, partitions: i32, adjust: impl FnOnce(&mut Settings)) -> TestEnv {
        Self::create(admin, partitions, adjust, true).await
    }

    /// Like `new`, with an empty database: the test migrates it itself.
    pub async fn unmigrated(partitions: i32) -> TestEnv {
        Self::create(&admin_url(), partitions, |_| {}, false).await
    }

    async fn create(admin: &str, partitions: i32, adjust: impl FnOnce(&mut Settings), migrate: bool) -> TestEnv {
        let id = Uuid::new_v4().simple().to_string();
        let db_name = format!("sb_test_{id}");
        let admin_url = admin.to_owned();
        let admin = PgPoolOptions::new().max_connections(1).connect(&admin_url).await.expect("admin connection");
        admin.execute(format!("CREATE DATABASE {db_name}").as_str()).await.expect("create database");
        admin.close().await;

        let prefix = format!("t{}", &id[..12]);
        let overrides = overrides(&prefix, &url_for(&admin_url, &db_name), &bootstrap());
        let mut settings = Settings::load(&overrides, &[]).expect("settings");
        settings.worker.retry_initial = Duration::from_millis(50);
        settings.worker.retry_max = Duration::from_millis(500);
        adjust(&mut settings);

        let pool = PgPoolOptions::new().max_connections(4).connect(&settings.database.url).await.expect("test db");
        if migrate {
            Store::from_pool(pool.clone()).migrate().await.expect("migrate");
        }
        let t = &settings.kafka.topics;
        ensure_topics(&settings.kafka, &[&t.email, &t.sms, &t.messenger, &t.dlq, &t.events], partitions)
            .await
            .expect("create topics");
        let publisher = Publisher::new(&settings.kafka).expect("publisher");
        TestEnv { settings, db_name, admin_url, pool, publisher }
    }

    /// Moves the SMS and Messenger channels to new topics of one partition
    /// each (the old ones are deleted), for tests whose traffic is email
    /// only and whose two group members must share its partitions: with
    /// two other partitions in all, a balanced assignment gives each member
    /// at least one email partition, whichever partitions the assignor moves.
    pub async fn narrow_sms_and_messenger(&mut self) {
        let t = &mut self.settings.kafka.topics;
        let old = [t.sms.clone(), t.messenger.clone()];
        t.sms = format!("{}-1p", t.sms);
        t.messenger = format!("{}-1p", t.messenger);
        let old: Vec<&str> = old.iter().map(String::as_str).collect();
        delete_topic_names(&self.settings.kafka, &old).await;
        let t = &self.settings.kafka.topics;
        ensure_topics(&self.settings.kafka, &[&t.sms, &t.messenger], 1).await.expect("create topics");
    }

    /// `samples` as the worker reads them from partition 0 of their topics,
    /// at offsets from 0, decoded into items for `Store::apply_batch`: for
    /// tests that place batches without a broker. A record that does not
    /// decode gives its error in its place.
    pub fn decoded_items(
        &self,
        samples: Vec<SampleRecord>,
        max_record_bytes: usize,
    ) -> Vec<Result<Vec<Item>, DecodeError>> {
        samples
            .into_iter()
            .enumerate()
            .map(|(offset, sample)| {
                let offset = offset as i64;
                let record = SourceRecord {
                    topic: self.topic(sample.channel),
                    partition: 0,
                    offset,
                    timestamp_ms: Some(1_764_054_000_000 + offset),
                    key: sample.key,
                    value: Some(sample.value),
                    headers: sample.headers,
                };
                let decoded = switchboard::decode::decode(&record, max_record_bytes)?;
                let source = SourceRef { topic: record.topic, partition: 0, offset };
                Ok(decoded.messages.into_iter().map(|message| Item { message, source: source.clone() }).collect())
            })
            .collect()
    }

    pub fn topic(&self, channel: &str) -> String {
        let t = &self.settings.kafka.topics;
        match channel {
            "email" => t.email.clone(),
            "sms" => t.sms.clone(),
            "messenger" => t.messenger.clone(),
            "dlq" => t.dlq.clone(),
            "events" => t.events.clone(),
            other => panic!("no such channel {other}"),
        }
    }

    /// Publishes a sample record to its channel's topic, to `partition` if given.
    pub async fn publish(&self, record: &SampleRecord) {
        self.publish_to(record, None).await
    }

    pub async fn publish_to(&self, record: &SampleRecord, key: Option<&str>) {
        let topic = self.topic(record.channel);
        let key = key.map(str::as_bytes).or(record.key.as_deref());
        self.publisher.publish(&topic, key, Some(&record.value), &record.headers).await.expect("publish");
    }

    /// Runs the worker with `--stop-at-end` semantics and returns its counters.
    pub async fn run_to_end(&self) -> Snapshot {
        self.run_to_end_with(&self.settings).await
    }

    pub async fn run_to_end_with(&self, settings: &Settings) -> Snapshot {
        let run = worker::run(settings, Mode::StopAtEnd, std::future::pending());
        tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("the worker reached the end in time")
            .expect("the worker ran")
            .stats
    }

    /// Starts the worker in this process with `settings`, until the
    /// returned handle's `stop` is awaited.
    pub fn start_worker(&self, settings: &Settings) -> RunningWorker {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let settings = settings.clone();
        let run = tokio::spawn(async move {
            worker::run(&settings, Mode::Forever, async {
                let _ = stopped.await;
            })
            .await
        });
        RunningWorker { stop, run }
    }

    /// The settings with another consumer group (a replay from offset zero).
    pub fn with_new_group(&self) -> Settings {
        let mut s = self.settings.clone();
        s.kafka.group_id = format!("{}-{}", s.kafka.group_id, Uuid::new_v4().simple());
        s
    }

    /// The real `switchboard` binary, configured for this environment by
    /// the environment variables operators use, with stdout captured.
    pub fn worker_command(&self, args: &[&str]) -> tokio::process::Command {
        self.command(env!("CARGO_BIN_EXE_switchboard"), args)
    }

    /// The `switchboard-load` binary (its own crate, built beside the
    /// worker's by `cargo build --workspace` or `cargo test --workspace`),
    /// configured like [`Self::worker_command`].
    pub fn load_command(&self, args: &[&str]) -> tokio::process::Command {
        let worker = std::path::Path::new(env!("CARGO_BIN_EXE_switchboard"));
        let load = worker.with_file_name(format!("switchboard-load{}", std::env::consts::EXE_SUFFIX));
        assert!(load.exists(), "{} is missing: cargo build --workspace builds it", load.display());
        self.command(load.as_os_str(), args)
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> tokio::process::Command {
        let s = &self.settings;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env("DATABASE_URL", &s.database.url)
            .env("KAFKA_BOOTSTRAP_SERVERS", &s.kafka.bootstrap_servers)
            .env("SWITCHBOARD_GROUP_ID", &s.kafka.group_id)
            .env("SWITCHBOARD_TOPIC_EMAIL", &s.kafka.topics.email)
            .env("SWITCHBOARD_TOPIC_SMS", &s.kafka.topics.sms)
            .env("SWITCHBOARD_TOPIC_MESSENGER", &s.kafka.topics.messenger)
            .env("SWITCHBOARD_TOPIC_DLQ", &s.kafka.topics.dlq)
            .env("SWITCHBOARD_TOPIC_EVENTS", &s.kafka.topics.events)
            .env("RUST_LOG", "warn")
            .env("SWITCHBOARD_HTTP_ADDR", "off")
            // A killed member's partitions move on after its session times out.
            .env("SWITCHBOARD_RDKAFKA_SESSION_TIMEOUT_MS", "6000")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Every record on the dead-letter topic (read until it is quiet for 3 s).
    pub fn dead_letters(&self) -> Vec<SourceRecord> {
        read_topic(&self.settings.kafka, &self.topic("dlq"), usize::MAX, Duration::from_secs(3))
            .expect("read dead letters")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Waits until at least `at_least` messages are stored; panics after `limit`.
    pub async fn wait_for_messages(&self, at_least: i64, limit: std::time::Duration) {
        crate::flow::wait_until(&format!("{at_least} messages are stored"), limit, || async {
            self.count("SELECT count(*) FROM messages").await >= at_least
        })
        .await;
    }

    /// Every row of the contract's tables, as text, for before/after comparisons.
    pub async fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        for table in ["conversations", "conversation_channels", "messages", "conversation_links", "conversation_events"]
        {
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY t::text"))
                .fetch_all(&self.pool)
                .await
                .expect("snapshot");
            out.push(format!("{table}: {}", rows.len()));
            out.extend(rows);
        }
        out
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        remove(self.pool.clone(), &self.admin_url, &self.db_name, &self.settings.kafka);
    }
}

/// Removes a test's database (through `admin_url`, a server URL that may
/// drop it) and its topics, from a `Drop`: outside async context, so on a
/// thread with its own runtime. A broker that kept every test's topics
/// would grow by thousands of partitions a run.
pub fn remove(pool: PgPool, admin_url: &str, db: &str, kafka: &switchboard::config::KafkaSettings) {
    let (admin_url, db, kafka) = (admin_url.to_owned(), db.to_owned(), kafka.clone());
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            // A connection the test released just before its end is handed
            // back by a task of the test's runtime, which this drop blocks:
            // the wait is bounded, and the forced drop below ends it anyway.
            let _ = tokio::time::timeout(Duration::from_secs(10), pool.close()).await;
            if let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(&admin_url).await {
                let _ = admin.execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str()).await;
            }
            delete_topics(&kafka).await;
        });
    })
    .join();
}

/// The `dlq_*` headers of a dead letter, by name.
pub fn dlq_headers(record: &SourceRecord) -> HashMap<String, String> {
    record
        .headers
        .iter()
        .filter(|h| h.key.starts_with("dlq_"))
        .map(|h| (h.key.clone(), String::from_utf8_lossy(h.value.as_deref().unwrap_or_default()).into_owned()))
        .collect()
}

/// Runs `scripts/services.sh COMMAND PORT` (a broker or Postgres instance
/// of a test's own, which it may stop without disturbing the others).
pub fn services(command: &str, port: u16) {
    services_script(&[command, &port.to_string()]);
}

/// Runs `scripts/services.sh ARGS`; its standard output.
pub fn services_script(args: &[&str]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh");
    let out = std::process::Command::new("bash").arg(script).args(args).output().expect("run scripts/services.sh");
    assert!(out.status.success(), "scripts/services.sh {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deletes a test's five topics.
async fn delete_topics(kafka: &switchboard::config::KafkaSettings) {
    let t = &kafka.topics;
    delete_topic_names(
        kafka,
        &[t.email.as_str(), t.sms.as_str(), t.messenger.as_str(), t.dlq.as_str(), t.events.as_str()],
    )
    .await;
}

/// Deletes topics; a failure (the broker is a test's own and already
/// stopped) only leaves them behind.
pub async fn delete_topic_names(kafka: &switchboard::config::KafkaSettings, topics: &[&str]) {
    let _ = tokio::time::timeout(Duration::from_secs(10), switchboard::kafka::delete_topics(kafka, topics)).await;
}

/// A worker running in the test's process (see [`TestEnv::start_worker`]).
pub struct RunningWorker {
    stop: tokio::sync::oneshot::Sender<()>,
    run: tokio::task::JoinHandle<anyhow::Result<worker::RunReport>>,
}

impl RunningWorker {
    /// Asks it to stop and waits until it has, committed and left the group.
    pub async fn stop(self) {
        self.stop.send(()).expect("the worker is still running");
        self.run.await.expect("the worker task").expect("the worker ran");
    }
}

/// A TCP port free at the time of asking, for a worker's HTTP endpoint.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
