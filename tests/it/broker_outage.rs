//! The broker goes away (librdkafka's in-process mock cluster, so the shared
//! Tansu keeps serving the other tests): the worker waits, then consumes,
//! places and dead-letters everything once the broker is back.

use crate::agent::sms;
use crate::flow::wait_until;
use crate::harness::{free_port, TestEnv};
use rdkafka::mocking::MockCluster;
use std::time::Duration;
use switchboard::config::Settings;
use switchboard::http::fetch;
use switchboard::kafka::{read_topic, Publisher};
use switchboard::worker::{self, Mode};

/// A mock cluster with this environment's topics, and the environment's
/// settings pointed at it (the database stays the test's own).
fn mock_cluster(env: &TestEnv) -> (MockCluster<'static, rdkafka::producer::DefaultProducerContext>, Settings) {
    let mock = MockCluster::new(1).expect("mock cluster");
    let mut settings = env.settings.clone();
    settings.kafka.bootstrap_servers = mock.bootstrap_servers();
    let t = &settings.kafka.topics;
    for topic in [&t.email, &t.sms, &t.messenger, &t.dlq] {
        mock.create_topic(topic, 1, 1).expect("mock topic");
    }
    (mock, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_makes_the_worker_wait_and_lose_nothing() {
    let env = TestEnv::new(1).await;
    let (mock, mut settings) = mock_cluster(&env);
    // The worker's /readyz says when its own attempt to reach the broker
    // failed: the outage is judged after that, not after a set time.
    let addr = format!("127.0.0.1:{}", free_port());
    settings.http.addr = addr.clone();
    settings.http.poll_interval = Duration::from_millis(200);
    let t = &settings.kafka.topics;
    let publisher = Publisher::new(&settings.kafka).expect("publisher");
    for n in 0..10 {
        let r = sms(&format!("mock-{n}"), &format!("3859{n}"), "800", "hello");
        publisher.publish(&t.sms, None, Some(&r.value), &r.headers).await.expect("publish");
    }
    publisher.publish(&t.sms, None, Some(b"not an event"), &[]).await.expect("publish");

    mock.broker_down(1).expect("broker down");
    let worker = {
        let settings = settings.clone();
        tokio::spawn(async move { worker::run(&settings, Mode::StopAtEnd, std::future::pending()).await })
    };
    wait_until("the worker found the broker unreachable", Duration::from_secs(60), || async {
        matches!(fetch(&addr, "/readyz").await, Ok((503, text)) if text.contains("broker: ") && !text.contains("not contacted yet"))
    })
    .await;
    assert!(!worker.is_finished(), "the worker waits for the broker");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 0);

    mock.broker_up(1).expect("broker up");
    let report = tokio::time::timeout(Duration::from_secs(90), worker)
        .await
        .expect("finishes once the broker is back")
        .unwrap()
        .expect("the worker ran");
    assert_eq!(report.stats.records_applied, 10, "{:?}", report.stats);
    assert_eq!(report.stats.records_dead_lettered, 1);
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 10);
    let letters = read_topic(&settings.kafka, &t.dlq, usize::MAX, Duration::from_secs(3)).expect("read");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].header_str("dlq_reason"), Some("not_cloudevents"));
}

/// The offset the group committed for the partition, if any.
fn committed(settings: &Settings, topic: &str) -> Option<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &settings.kafka.bootstrap_servers)
        .set("group.id", &settings.kafka.group_id)
        .create()
        .expect("offset reader");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(5)).expect("committed offsets");
    committed.elements().first().and_then(|e| e.offset().to_raw()).filter(|o| *o >= 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_wait_for_the_dead_letter_to_be_acknowledged() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let env = TestEnv::new(1).await;
    let (mock, mut settings) = mock_cluster(&env);
    // One record per batch, so what waits on the dead letter is exactly known.
    settings.worker.batch_max_records = 1;
    let t = settings.kafka.topics.clone();
    let publisher = Publisher::new(&settings.kafka).expect("publisher");
    let good = |n: usize| sms(&format!("ack-{n}"), &format!("3859{n}"), "800", "hello");
    for n in 0..5 {
        publisher.publish(&t.sms, None, Some(&good(n).value), &good(n).headers).await.expect("publish");
    }
    // Offset 5: the bad record. Five good ones follow it.
    publisher.publish(&t.sms, None, Some(b"not an event"), &[]).await.expect("publish");
    for n in 5..10 {
        publisher.publish(&t.sms, None, Some(&good(n).value), &good(n).headers).await.expect("publish");
    }

    // From now on the broker refuses every produce: the dead letter cannot land.
    mock.request_errors(RDKafkaApiKey::Produce, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 10_000]);
    let worker = {
        let settings = settings.clone();
        tokio::spawn(async move { worker::run(&settings, Mode::StopAtEnd, std::future::pending()).await })
    };
    wait_until("the records before the bad one are placed", Duration::from_secs(20), || async {
        env.count("SELECT count(*) FROM messages").await == 5
    })
    .await;
    // Auto-commit has run after them once the group's offset reads 5: from
    // then on a commit past the unacknowledged dead letter would show.
    let committed_now = || {
        let (s, topic) = (settings.clone(), t.sms.clone());
        async move { tokio::task::spawn_blocking(move || committed(&s, &topic)).await.unwrap() }
    };
    wait_until("auto-commit stored the offset before the dead letter", Duration::from_secs(30), || async {
        committed_now().await.is_some_and(|o| o >= 5)
    })
    .await;
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 5, "the partition waits behind the dead letter");
    let before = committed_now().await;
    assert!(before.unwrap_or(0) <= 5, "nothing past the unacknowledged dead letter is committed: {before:?}");
    assert!(!worker.is_finished());

    mock.clear_request_errors(RDKafkaApiKey::Produce);
    let report = tokio::time::timeout(Duration::from_secs(90), worker).await.expect("finishes").unwrap().expect("ran");
    assert_eq!(report.stats.records_dead_lettered, 1);
    assert_eq!(report.stats.records_applied, 10);
    let s = settings.clone();
    let topic = t.sms.clone();
    let after = tokio::task::spawn_blocking(move || committed(&s, &topic)).await.unwrap();
    assert_eq!(after, Some(11), "committed past every record once the dead letter landed");
}
