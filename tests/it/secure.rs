//! The secure path as production runs it: a broker that takes only
//! SASL_SSL (SCRAM-SHA-512, certificates from a private CA, ACLs on) and a
//! Postgres that takes only TLS with scram-sha-256 passwords, both started
//! by `scripts/services.sh` beside the plaintext ones. The schema's owner
//! migrates and grants; the worker runs as a role with the grants only and
//! as a Kafka principal with exactly the ACLs of docs/operations.md; the
//! operator's principal redrives. Everything goes through the real binary,
//! configured by the environment variables the README gives.
//!
//! And what an operator sees when one piece is wrong: one line that names
//! it and says what to do, a non-zero exit before any record is read, no
//! dead letter, no secret printed.

use crate::agent::sms;
use crate::flow::wait_until;
use crate::harness::{dlq_headers, free_port};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;
use switchboard::config::Settings;
use switchboard::kafka::{ensure_topics, read_topic, Publisher};
use switchboard::record::SourceRecord;
use switchboard_load::sample::{binary, SampleRecord};
use uuid::Uuid;

const BROKER_PORT: u16 = 9192;
const POSTGRES_PORT: u16 = 5433;

/// The secure services' CA paths, users and passwords (`secure-env`),
/// after starting them once for this test binary.
fn secrets() -> &'static HashMap<String, String> {
    static SECRETS: OnceLock<HashMap<String, String>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        crate::harness::services("secure-broker-start", BROKER_PORT);
        crate::harness::services("secure-pg-start", POSTGRES_PORT);
        let out = crate::harness::services_script(&["secure-env"]);
        out.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    })
}

fn secret(name: &str) -> String {
    secrets().get(&format!("SWITCHBOARD_SECURE_{name}")).unwrap_or_else(|| panic!("secure-env names {name}")).clone()
}

fn postgres_url(user: &str, password: &str, db: &str, ca: &str) -> String {
    format!("postgres://{user}:{password}@127.0.0.1:{POSTGRES_PORT}/{db}?sslmode=verify-full&sslrootcert={ca}")
}

/// The librdkafka properties of a principal, as the README's variables.
fn kafka_env(user: &str, password: &str, ca: &str) -> Vec<(String, String)> {
    [
        ("SWITCHBOARD_RDKAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("SWITCHBOARD_RDKAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("SWITCHBOARD_RDKAFKA_SASL_USERNAME", user),
        ("SWITCHBOARD_RDKAFKA_SASL_PASSWORD", password),
        ("SWITCHBOARD_RDKAFKA_SSL_CA_LOCATION", ca),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// One test's database (owned by the schema's owner, migrated, granted to
/// the worker's role) and topics (created by the broker's admin).
struct SecureEnv {
    db: String,
    prefix: String,
    /// Read as the schema's owner.
    pool: PgPool,
    /// The broker's admin (creates topics, reads what the worker wrote).
    admin: Settings,
    publisher: Publisher,
}

impl SecureEnv {
    async fn new() -> SecureEnv {
        let ca = secret("CA");
        let id = Uuid::new_v4().simple().to_string();
        let db = format!("sb_secure_{id}");
        let prefix = format!("s{}", &id[..12]);
        let (owner, owner_pw) = (secret("PG_OWNER"), secret("PG_OWNER_PASSWORD"));
        let server = PgPoolOptions::new()
            .max_connections(1)
            .connect(&postgres_url(&owner, &owner_pw, "postgres", &ca))
            .await
            .expect("the owner connects over TLS with its password");
        server.execute(format!("CREATE DATABASE {db}").as_str()).await.expect("create database");
        server.close().await;
        let owner_url = postgres_url(&owner, &owner_pw, &db, &ca);
        for args in [vec!["migrate"], vec!["grant", "--role", &secret("PG_WORKER")]] {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
                .args(&args)
                .env("DATABASE_URL", &owner_url)
                .output()
                .await
                .expect("run switchboard");
            assert!(out.status.success(), "{args:?} as the owner: {}", String::from_utf8_lossy(&out.stderr));
        }
        let pool = PgPoolOptions::new().max_connections(2).connect(&owner_url).await.expect("owner pool");
        let admin =
            settings(&prefix, &owner_url, kafka_env(&secret("KAFKA_ADMIN_USER"), &secret("KAFKA_ADMIN_PASSWORD"), &ca));
        let t = &admin.kafka.topics;
        ensure_topics(&admin.kafka, &[&t.email, &t.sms, &t.messenger, &t.dlq, &t.events], 2)
            .await
            .expect("the admin creates the topics");
        let publisher = Publisher::new(&admin.kafka).expect("publisher");
        SecureEnv { db, prefix, pool, admin, publisher }
    }

    fn topic(&self, what: &str) -> String {
        format!("{}.{what}", self.prefix)
    }

    fn group(&self) -> String {
        format!("{}-group", self.prefix)
    }

    /// The worker principal's ACLs, as docs/operations.md gives them;
    /// `group: false` leaves the group's out.
    fn allow_worker(&self, group: bool) {
        let user = format!("User:{}", secret("KAFKA_WORKER_USER"));
        let (email, sms, messenger) = (self.topic("email"), self.topic("sms"), self.topic("messenger"));
        let mut read = vec!["--add", "--allow-principal", &user, "--operation", "Read", "--operation", "Describe"];
        read.extend(["--topic", &email, "--topic", &sms, "--topic", &messenger]);
        let group_name = self.group();
        if group {
            read.extend(["--group", &group_name]);
        }
        acls(&read);
        let (dlq, events) = (self.topic("dlq"), self.topic("events"));
        acls(&["--add", "--allow-principal", &user, "--operation", "Write", "--topic", &dlq, "--topic", &events]);
    }

    /// The operator principal's: read the dead letters, write them back.
    fn allow_operator(&self) {
        let user = format!("User:{}", secret("KAFKA_OPERATOR_USER"));
        let dlq = self.topic("dlq");
        acls(&["--add", "--allow-principal", &user, "--operation", "Read", "--operation", "Describe", "--topic", &dlq]);
        let (email, sms, messenger) = (self.topic("email"), self.topic("sms"), self.topic("messenger"));
        let mut write = vec!["--add", "--allow-principal", &user, "--operation", "Write"];
        write.extend(["--topic", &email, "--topic", &sms, "--topic", &messenger]);
        acls(&write);
    }

    /// `switchboard ARGS` as the worker: its role, its principal.
    fn worker(&self, args: &[&str]) -> tokio::process::Command {
        let url = postgres_url(&secret("PG_WORKER"), &secret("PG_WORKER_PASSWORD"), &self.db, &secret("CA"));
        let kafka = kafka_env(&secret("KAFKA_WORKER_USER"), &secret("KAFKA_WORKER_PASSWORD"), &secret("CA"));
        self.command(args, &url, kafka)
    }

    /// `switchboard ARGS` as the operator's principal.
    fn operator(&self, args: &[&str]) -> tokio::process::Command {
        let url = postgres_url(&secret("PG_WORKER"), &secret("PG_WORKER_PASSWORD"), &self.db, &secret("CA"));
        let kafka = kafka_env(&secret("KAFKA_OPERATOR_USER"), &secret("KAFKA_OPERATOR_PASSWORD"), &secret("CA"));
        self.command(args, &url, kafka)
    }

    fn command(&self, args: &[&str], url: &str, kafka: Vec<(String, String)>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .args(args)
            .env("DATABASE_URL", url)
            .env("KAFKA_BOOTSTRAP_SERVERS", format!("127.0.0.1:{BROKER_PORT}"))
            .env("SWITCHBOARD_GROUP_ID", self.group())
            .env("SWITCHBOARD_TOPIC_EMAIL", self.topic("email"))
            .env("SWITCHBOARD_TOPIC_SMS", self.topic("sms"))
            .env("SWITCHBOARD_TOPIC_MESSENGER", self.topic("messenger"))
            .env("SWITCHBOARD_TOPIC_DLQ", self.topic("dlq"))
            .env("SWITCHBOARD_TOPIC_EVENTS", self.topic("events"))
            .env("SWITCHBOARD_HTTP_ADDR", "off")
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE")
            .envs(kafka)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn publish(&self, records: &[SampleRecord]) {
        for r in records {
            let topic = self.topic(r.channel);
            self.publisher.publish(&topic, r.key.as_deref(), Some(&r.value), &r.headers).await.expect("publish");
        }
    }

    fn read(&self, what: &str) -> Vec<SourceRecord> {
        read_topic(&self.admin.kafka, &self.topic(what), usize::MAX, Duration::from_secs(3)).expect("read as the admin")
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn as_owner(&self, sql: &str) {
        self.pool.execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for SecureEnv {
    fn drop(&mut self) {
        let admin_url = postgres_url("postgres", &secret("PG_ADMIN_PASSWORD"), "postgres", &secret("CA"));
        crate::harness::remove(self.pool.clone(), &admin_url, &self.db, &self.admin.kafka);
    }
}

fn settings(prefix: &str, url: &str, kafka: Vec<(String, String)>) -> Settings {
    let overrides = crate::harness::overrides(prefix, url, &format!("127.0.0.1:{BROKER_PORT}"));
    Settings::load(&overrides, &kafka).expect("settings")
}

fn acls(args: &[&str]) {
    let port = BROKER_PORT.to_string();
    crate::harness::services_script(&[&["secure-acls", &port][..], args].concat());
}

/// Runs a command to its end (at most two minutes); status, stdout, stderr.
async fn finish(mut command: tokio::process::Command) -> (std::process::ExitStatus, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the command ends by itself")
        .expect("runs");
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn traffic(prefix: &str, n: usize) -> Vec<SampleRecord> {
    (0..n).map(|i| sms(&format!("{prefix}-{i}"), &format!("38591{:07}", i % 4), "800", "hello")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_events_redrive_and_replay_over_sasl_ssl_and_tls_postgres_as_least_privilege_roles() {
    let env = SecureEnv::new().await;
    env.allow_worker(true);
    env.allow_operator();
    let mut records = traffic("sec", 30);
    // The gateway misspelt a type: a dead letter the operator fixes.
    let typo = br#"{"results":[{"messageId":"sec-fix","from":"385919999999","to":"800","text":"typo","receivedAt":"2026-11-25T07:00:00.000+0000","smsCount":1}],"messageCount":1,"pendingMessageCount":0}"#;
    records.push(binary("sms", "sms.recieved", "evt-sec-typo", "application/json", &[], typo));
    env.publish(&records).await;

    let (status, stdout, stderr) = finish(env.worker(&["run", "--stop-at-end"])).await;
    assert!(status.success(), "the worker runs as its role and principal: {stderr}");
    let stats: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
    assert_eq!((stats["records_applied"].as_u64(), stats["records_dead_lettered"].as_u64()), (Some(30), Some(1)));
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 30);
    assert!(!stderr.contains(&secret("KAFKA_WORKER_PASSWORD")) && !stderr.contains(&secret("PG_WORKER_PASSWORD")));
    let dead = env.read("dlq");
    assert_eq!(dead.len(), 1);
    assert_eq!(dlq_headers(&dead[0])["dlq_reason"], "unknown_type");
    // The events went out through the worker's WRITE on the events topic.
    let events = env.read("events");
    let created = events
        .iter()
        .filter(|e| String::from_utf8_lossy(e.value.as_deref().unwrap_or_default()).contains("conversation.created"))
        .count() as i64;
    assert_eq!(created, env.count("SELECT count(*) FROM conversations").await, "one created event per conversation");

    // The operator's principal reads the dead letter and sends it back fixed.
    let fix = ["redrive", "--reason", "unknown_type", "--set-header", "ce_type=sms.received"];
    let (status, stdout, stderr) = finish(env.operator(&fix)).await;
    assert!(status.success() && stdout.contains("1 record redriven, 0 skipped"), "{stdout}{stderr}");
    let (status, _, stderr) = finish(env.worker(&["run", "--stop-at-end"])).await;
    assert!(status.success(), "{stderr}");
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE external_id = 'sec-fix'").await, 1);

    // A replay from the earliest offsets, moved by the worker's principal,
    // changes nothing.
    let before = env.count("SELECT count(*) FROM messages").await;
    let conversations = env.count("SELECT count(*) FROM conversations").await;
    let (status, stdout, stderr) = finish(env.worker(&["replay", "--to-earliest"])).await;
    assert!(status.success() && stdout.contains("Committed."), "{stdout}{stderr}");
    let (status, stdout, stderr) = finish(env.worker(&["run", "--stop-at-end"])).await;
    assert!(status.success(), "{stderr}");
    let stats: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
    assert_eq!(stats["records_duplicate"].as_u64(), Some(31), "every placed record again, as a duplicate: {stdout}");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, before);
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, conversations);
}

/// What a run with one thing wrong prints and leaves: it must exit by
/// itself, non-zero, and say `expected` in few lines without `secret`.
async fn refused(env: &SecureEnv, command: tokio::process::Command, expected: &[&str], secret: &str) -> String {
    let (status, _, stderr) = finish(command).await;
    assert!(!status.success(), "a misconfigured worker exits non-zero: {stderr}");
    for text in expected {
        assert!(stderr.contains(text), "the error names {text:?}: {stderr}");
    }
    assert!(!stderr.contains(secret), "no secret is printed: {stderr}");
    let lines = stderr.lines().count();
    assert!(lines <= 3, "one clear error, not a flood ({lines} lines): {stderr}");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 0, "nothing read");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_wrong_setting_stops_the_worker_at_start_with_one_line_that_names_it_and_no_dead_letter() {
    let env = SecureEnv::new().await;
    env.publish(&traffic("wrong", 5)).await;
    let (pw, ca, other_ca) = (secret("KAFKA_WORKER_PASSWORD"), secret("CA"), secret("OTHER_CA"));

    // Postgres first: the worker checks it before the broker.
    let mut bad = env.worker(&["run"]);
    let pg_pw = secret("PG_WORKER_PASSWORD");
    bad.env("DATABASE_URL", postgres_url(&secret("PG_WORKER"), "not-the-password", &env.db, &ca));
    refused(&env, bad, &["password authentication failed", "DATABASE_URL"], "not-the-password").await;

    let mut bad = env.worker(&["run"]);
    bad.env("DATABASE_URL", postgres_url(&secret("PG_WORKER"), &pg_pw, &env.db, &other_ca));
    refused(&env, bad, &["invalid peer certificate", "sslrootcert"], &pg_pw).await;

    env.as_owner(&format!("REVOKE INSERT ON messages FROM {}", secret("PG_WORKER"))).await;
    let grant = format!("switchboard grant --role {}", secret("PG_WORKER"));
    refused(&env, env.worker(&["run"]), &["lacks INSERT on messages", &grant], &pg_pw).await;
    env.as_owner(&format!("GRANT INSERT ON messages TO {}", secret("PG_WORKER"))).await;

    // The broker.
    let mut bad = env.worker(&["run"]);
    bad.env("SWITCHBOARD_RDKAFKA_SASL_PASSWORD", "not-the-password");
    refused(&env, bad, &["refused the SASL login", "SWITCHBOARD_RDKAFKA_SASL_PASSWORD"], "not-the-password").await;

    let mut bad = env.worker(&["run"]);
    bad.env("SWITCHBOARD_RDKAFKA_SSL_CA_LOCATION", &other_ca);
    refused(&env, bad, &["certificate verify failed", "ssl.ca.location"], &pw).await;

    let email = env.topic("email");
    refused(&env, env.worker(&["run"]), &["may not read topic", &email, "docs/operations.md"], &pw).await;
    env.allow_worker(false);
    let group = env.group();
    refused(&env, env.worker(&["run"]), &["may not use consumer group", &group], &pw).await;

    assert!(env.read("dlq").is_empty(), "nothing is dead-lettered for a misconfiguration");
    // Fixed, it places everything.
    env.allow_worker(true);
    let (status, _, stderr) = finish(env.worker(&["run", "--stop-at-end"])).await;
    assert!(status.success(), "{stderr}");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_while_running_makes_the_partition_wait_with_readyz_saying_why_and_loses_nothing() {
    let env = SecureEnv::new().await;
    env.allow_worker(true);
    env.publish(&traffic("first", 4)).await;
    let port = free_port();
    let mut command = env.worker(&["run"]);
    command.env("SWITCHBOARD_HTTP_ADDR", format!("127.0.0.1:{port}"));
    let mut child = command.spawn().expect("start the worker");
    // Read its log as it comes, so a full pipe never blocks the worker.
    let log = {
        use tokio::io::AsyncReadExt as _;
        let mut stderr = child.stderr.take().expect("stderr");
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        })
    };
    let addr = format!("127.0.0.1:{port}");
    let messages = |n: i64| {
        let env = &env;
        move || async move { env.count("SELECT count(*) FROM messages").await >= n }
    };
    wait_until("the first messages are stored", Duration::from_secs(60), messages(4)).await;

    let role = secret("PG_WORKER");
    env.as_owner(&format!("REVOKE INSERT ON messages FROM {role}")).await;
    env.publish(&traffic("second", 4)).await;
    wait_until("/readyz says a grant is missing", Duration::from_secs(60), || async {
        matches!(switchboard::http::fetch(&addr, "/readyz").await, Ok((503, body)) if body.contains("grant"))
    })
    .await;
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 4, "the partition waits");
    assert!(env.read("dlq").is_empty(), "a missing grant is the infrastructure's: nothing is dead-lettered");

    env.as_owner(&format!("GRANT INSERT ON messages TO {role}")).await;
    wait_until("the rest is stored once the grant is back", Duration::from_secs(60), messages(8)).await;
    wait_until("/readyz is ready again", Duration::from_secs(30), || async {
        matches!(switchboard::http::fetch(&addr, "/readyz").await, Ok((200, _)))
    })
    .await;
    crate::flow::signal(&child, "TERM");
    let out = tokio::time::timeout(Duration::from_secs(60), async {
        let _ = child.wait().await;
        log.await.unwrap_or_default()
    })
    .await
    .expect("the worker stops");
    let told = out.lines().filter(|l| l.contains("permission denied")).count();
    assert!((1..=2).contains(&told), "the wait is told once, not per attempt ({told} lines): {out}");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 8);
    assert!(env.read("dlq").is_empty());
}
