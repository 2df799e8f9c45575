//! The fault suite: real worker processes under load, with crashes, a
//! Postgres outage and a group scaled up and down, then invariants I1 to I5
//! checked in SQL. CI runs the short version; `SWITCHBOARD_FAULTS=full`
//! runs the full one (docs/reliability.md has the command and the figures).

use crate::concurrency::{check_invariants, publish_all, traffic, Rng};
use crate::flow::signal;
use crate::harness::TestEnv;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};
use switchboard::decode::decode;
use switchboard::kafka::read_topic;
use switchboard_load::sample::SampleRecord;
use tokio::process::Child;

/// How hard the suite pushes.
struct Scale {
    /// Messages in the traffic (before copies and redeliveries are added).
    messages: u32,
    /// SIGKILLs in the crash test.
    kills: u32,
    /// How long Postgres stays down.
    outage: Duration,
}

fn scale() -> Scale {
    match std::env::var("SWITCHBOARD_FAULTS").as_deref() {
        Ok("full") => Scale { messages: 46_000, kills: 10, outage: Duration::from_secs(30) },
        _ => Scale { messages: 3_000, kills: 3, outage: Duration::from_secs(5) },
    }
}

fn worker(env: &TestEnv, args: &[&str]) -> Child {
    env.worker_command(args)
        .env("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "50")
        .stdout(Stdio::null())
        .spawn()
        .expect("start a worker process")
}

async fn stored(env: &TestEnv) -> i64 {
    env.count("SELECT count(*) FROM messages").await
}

async fn expect_exit_zero(child: Child, within: Duration) {
    let out = tokio::time::timeout(within, child.wait_with_output()).await.expect("the worker ends in time").unwrap();
    assert!(out.status.success(), "exit status {}", out.status);
}

/// Unique messages the traffic carries (copies to two inboxes count twice,
/// redeliveries once).
fn distinct(ids: &[String]) -> i64 {
    ids.iter().collect::<HashSet<_>>().len() as i64
}

/// The traffic, published in slices while `during` runs: a steady load.
async fn steady_load<F: std::future::Future>(
    env: &TestEnv,
    records: &[(SampleRecord, String)],
    during: F,
) -> F::Output {
    let publishing = async {
        for slice in records.chunks(500) {
            publish_all(env, slice).await;
            tokio::task::yield_now().await;
        }
    };
    let ((), out) = tokio::join!(publishing, during);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_under_load_lose_nothing_and_double_nothing() {
    let scale = scale();
    let env = TestEnv::new(4).await;
    let mut rng = Rng(0xdead_10cc);
    let (records, ids) = traffic(&mut rng, 1, scale.messages);
    let total = distinct(&ids);

    let kills = steady_load(&env, &records, async {
        let mut kill_rng = Rng(0x5ca1_ab1e);
        let mut kills = 0;
        for _ in 0..scale.kills {
            let child = worker(&env, &["run"]);
            // A random amount of progress, then the crash: somewhere inside
            // a batch, between batches, or before the member joined.
            let step = 1 + kill_rng.next((total as u64 / (2 * scale.kills as u64)).max(2)) as i64;
            let target = (stored(&env).await + step).min(total);
            env.wait_for_messages(target, Duration::from_secs(240)).await;
            signal(&child, "KILL");
            let _ = child.wait_with_output().await;
            kills += 1;
        }
        kills
    })
    .await;
    let at_last_kill = stored(&env).await;

    // The end of the run: waits for the dead members' partitions.
    expect_exit_zero(worker(&env, &["run", "--stop-at-end"]), Duration::from_secs(300)).await;
    eprintln!("crashes: {kills} SIGKILLs, {at_last_kill} of {total} stored at the last one, {} records", records.len());
    assert_eq!(kills, scale.kills);
    assert!(env.dead_letters().is_empty(), "nothing dead-lettered");
    check_invariants(&env, &ids).await;
    // Events: none lost, none for a batch that rolled back, resends dropped
    // by id (contract section 6).
    let events = crate::events::check_events(&env, &env.settings.kafka).await;
    eprintln!("crashes: {} events, each decision once", events.len());
}

/// A Postgres server of the test's own, so stopping it leaves the shared
/// one (and the tests beside this one) alone.
struct OwnPostgres {
    port: u16,
}

impl OwnPostgres {
    fn start(port: u16) -> OwnPostgres {
        let pg = OwnPostgres { port };
        pg.services("pg-instance-start");
        pg
    }

    fn services(&self, command: &str) {
        crate::harness::services(command, self.port);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.services("pg-instance-stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_makes_the_worker_wait_without_crashing_or_dead_lettering() {
    let scale = scale();
    // Below the ephemeral range (32768-60999 here): a port in it can be taken
    // by any outgoing connection's local end, and Postgres then fails to bind.
    let pg = OwnPostgres::start(25432);
    let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
    let env = TestEnv::on_postgres(&admin, 3, |_| {}).await;
    let mut rng = Rng(0x000f_f11e);
    let (records, ids) = traffic(&mut rng, 1, scale.messages);
    let total = distinct(&ids);

    let mut child = worker(&env, &["run"]);
    let outage = steady_load(&env, &records, async {
        env.wait_for_messages(total / 5, Duration::from_secs(240)).await;
        pg.services("pg-instance-stop");
        let down = Instant::now();
        // The fault itself lasts a set time; nothing waits on it for sync.
        while down.elapsed() < scale.outage {
            assert!(child.try_wait().unwrap().is_none(), "the worker outlives the outage");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        pg.services("pg-instance-start");
        down.elapsed()
    })
    .await;
    let restarted = Instant::now();
    env.wait_for_messages(total, Duration::from_secs(300)).await;
    let recovery = restarted.elapsed();
    assert!(child.try_wait().unwrap().is_none(), "the same process finished the work");
    signal(&child, "TERM");
    expect_exit_zero(child, Duration::from_secs(60)).await;
    eprintln!("postgres outage: down {outage:?}; all {total} stored {recovery:?} after the restart");
    assert!(env.dead_letters().is_empty(), "nothing dead-lettered");
    check_invariants(&env, &ids).await;
}

/// Per partition, the offset the group has committed.
fn committed(env: &TestEnv, topics: &[String], partitions: i32) -> HashMap<(String, i32), i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.settings.kafka.bootstrap_servers)
        .set("group.id", &env.settings.kafka.group_id)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        for p in 0..partitions {
            tpl.add_partition(t, p);
        }
    }
    let found = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    found
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
            _ => None,
        })
        .collect()
}

/// Offsets are committed only for applied records: every record below a
/// committed offset has its message stored. Returns how many were checked.
async fn committed_records_are_stored(env: &TestEnv, partitions: i32) -> usize {
    let topics: Vec<String> = ["email", "sms", "messenger"].iter().map(|c| env.topic(c)).collect();
    // Committed offsets first: whatever they cover must already be stored.
    let commits = committed(env, &topics, partitions);
    let stored: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT channel || '/' || endpoint || '/' || external_id FROM messages")
            .fetch_all(&env.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let mut checked = 0;
    for topic in &topics {
        for record in read_topic(&env.settings.kafka, topic, usize::MAX, Duration::from_secs(2)).expect("read") {
            let Some(commit) = commits.get(&(record.topic.clone(), record.partition)) else { continue };
            if record.offset >= *commit {
                continue;
            }
            let decoded = decode(&record, usize::MAX).expect("the traffic is valid");
            for m in decoded.messages {
                let id = format!("{}/{}/{}", m.channel, m.endpoint, m.external_id);
                assert!(stored.contains(&id), "{id} at {}/{} is below the committed {commit}", topic, record.partition);
                checked += 1;
            }
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_one_to_three_to_one_keeps_order_and_commits_only_applied_records() {
    let scale = scale();
    let env = TestEnv::new(6).await;
    let mut rng = Rng(0x0321);
    let (records, ids) = traffic(&mut rng, 1, scale.messages);
    let total = distinct(&ids);

    let mut checked = 0;
    steady_load(&env, &records, async {
        let first = worker(&env, &["run"]);
        env.wait_for_messages(total / 5, Duration::from_secs(240)).await;
        let more = [worker(&env, &["run"]), worker(&env, &["run"])];
        env.wait_for_messages(total / 2, Duration::from_secs(240)).await;
        checked += committed_records_are_stored(&env, 6).await;
        // Back to one: the two leave cleanly, their partitions move back.
        for w in more {
            signal(&w, "TERM");
            expect_exit_zero(w, Duration::from_secs(60)).await;
        }
        checked += committed_records_are_stored(&env, 6).await;
        first
    })
    .await
    .kill()
    .await
    .expect("stop the first worker");
    expect_exit_zero(worker(&env, &["run", "--stop-at-end"]), Duration::from_secs(300)).await;
    checked += committed_records_are_stored(&env, 6).await;
    eprintln!("rebalances: {checked} committed records checked against the store");
    assert!(checked > 0);

    // Within a partition, records were applied in offset order.
    let out_of_order = env
        .count(
            "SELECT count(*) FROM (SELECT stored_at, lag(stored_at) OVER (
                 PARTITION BY kafka_topic, kafka_partition ORDER BY kafka_offset) AS before FROM messages) m
              WHERE stored_at < before",
        )
        .await;
    assert_eq!(out_of_order, 0, "per-partition order");
    assert!(env.dead_letters().is_empty(), "nothing dead-lettered");
    check_invariants(&env, &ids).await;
}
