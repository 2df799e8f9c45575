//! The real broker's own behaviour that Switchboard relies on: a broker
//! restart keeps every record and the worker rides it out, and the end of a
//! partition the worker reads is the true end (Tansu 0.6 got both wrong).

use crate::agent::sms;
use crate::harness::{bootstrap, TestEnv};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::Duration;

/// An Apache Kafka broker of the test's own, started and stopped with
/// `scripts/services.sh`, so stopping it leaves the shared broker (and the
/// tests running beside this one) alone. Its records live on disk.
pub(crate) struct OwnBroker {
    port: u16,
}

impl OwnBroker {
    pub(crate) fn start(port: u16) -> OwnBroker {
        let broker = OwnBroker { port };
        broker.services("broker-start");
        broker
    }

    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops it; its records stay on disk.
    pub(crate) fn stop(&self) {
        self.services("broker-stop");
    }

    /// Starts it again after `stop`.
    pub(crate) fn restart(&self) {
        self.services("broker-start");
    }

    fn services(&self, command: &str) {
        crate::harness::services(command, self.port);
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.services("broker-stop");
    }
}

/// Per partition: (high watermark, offset the group committed).
fn ends_and_commits(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> HashMap<i32, (i64, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    (0..partitions)
        .map(|p| {
            let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks");
            let commit = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            };
            (p, (high, commit))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_the_worker_reads_is_the_true_end_and_stop_at_end_stops_there() {
    let env = TestEnv::new(3).await;
    let n = 2_500;
    for i in 0..n {
        env.publish(&sms(&format!("hw-{i}"), &format!("{}", 1000 + i % 41), "800", "hi")).await;
    }
    let topic = env.topic("sms");

    // ListOffsets(latest), what lag and replay tools ask, counts every record.
    let before = ends_and_commits(&bootstrap(), &env.settings.kafka.group_id, &topic, 3);
    assert_eq!(before.values().map(|(high, _)| high).sum::<i64>(), n as i64, "{before:?}");
    assert!(before.values().all(|(_, commit)| *commit < 0), "nothing committed yet: {before:?}");

    let stats = env.run_to_end().await;
    assert_eq!(stats.records, n as u64, "stop-at-end read every record and nothing more");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, n as i64);

    // The group's committed offset is exactly the end of every partition.
    let after = ends_and_commits(&bootstrap(), &env.settings.kafka.group_id, &topic, 3);
    for (p, (high, commit)) in &after {
        assert_eq!(commit, high, "partition {p} committed at its end");
        assert_eq!(Some(high), before.get(p).map(|(h, _)| h), "partition {p} unchanged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_run_loses_nothing_and_doubles_nothing() {
    // The port is this test's alone; its controller listens on the next one.
    let broker = OwnBroker::start(9392);
    let env = TestEnv::with(3, |s| s.kafka.bootstrap_servers = broker.address()).await;
    let first = 3_000;
    for i in 0..first {
        env.publish(&sms(&format!("br-{i}"), &format!("{}", 2000 + i % 23), "800", "before")).await;
    }
    // Small batches keep the worker busy while the broker goes away.
    let mut worker = env
        .worker_command(&["run"])
        .env("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "5")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the worker");
    env.wait_for_messages(200, Duration::from_secs(180)).await;

    broker.services("broker-stop");
    assert!(worker.try_wait().expect("worker status").is_none(), "the worker outlives the broker");
    broker.services("broker-start");

    // Records published after the restart reach the same worker process.
    let second = 1_000;
    for i in 0..second {
        env.publish(&sms(&format!("ar-{i}"), &format!("{}", 2000 + i % 23), "800", "after")).await;
    }
    env.wait_for_messages((first + second) as i64, Duration::from_secs(180)).await;
    assert!(worker.try_wait().expect("worker status").is_none(), "the same worker process placed them");

    // A clean stop commits; the group then has nothing left to read.
    let pid = worker.id().expect("running").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(60), worker.wait()).await.expect("it stops").unwrap();
    assert!(status.success(), "exit status {status}");
    let rest = env.run_to_end().await;
    assert_eq!(rest.records, 0, "every offset was committed after the restart");

    assert_eq!(env.count("SELECT count(*) FROM messages").await, (first + second) as i64);
    assert_eq!(env.count("SELECT count(DISTINCT external_id) FROM messages").await, (first + second) as i64);
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, 23, "one conversation per pair");
    assert!(env.dead_letters().is_empty(), "nothing dead-lettered");
}
