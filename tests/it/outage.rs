//! Transient failures make the partition wait and retry, never skip and
//! never dead-letter: Postgres is put behind a proxy the test switches off.

use crate::harness::TestEnv;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_load::sample::binary;
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to Postgres that refuses connections while `down`, and
/// counts the connections it refused.
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(target: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(true));
        let flag = down.clone();
        let refused = Arc::new(AtomicUsize::new(0));
        let count = refused.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    count.fetch_add(1, Ordering::SeqCst);
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { port, down, refused }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_makes_the_worker_wait_and_lose_nothing() {
    let env = TestEnv::new(1).await;
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let mut settings = env.settings.clone();
    settings.database.url = settings.database.url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    // Only the batches go through the proxy: the events publisher's own
    // attempts (its lock, its count of the outbox) would make the refused
    // connections counted below without a batch having tried yet.
    settings.events.enabled = false;
    assert!(settings.database.url.contains(&proxy.port.to_string()), "the worker goes through the proxy");

    for n in 0..20 {
        let body = format!(
            r#"{{"results":[{{"messageId":"out-{n}","from":"38591{n:04}","to":"800","text":"during the outage","receivedAt":"2026-11-25T07:00:00.000+0000"}}]}}"#
        );
        env.publish(&binary("sms", "sms.received", &format!("o{n}"), "application/json", &[], body.as_bytes())).await;
    }

    let worker = {
        let settings = settings.clone();
        tokio::spawn(async move {
            switchboard::worker::run(&settings, switchboard::worker::Mode::StopAtEnd, std::future::pending()).await
        })
    };
    // The worker has really started (its checks and its lock budget, each
    // refused too, come before it joins the group) and its batches keep
    // trying: several more connection attempts were refused after it
    // joined, and it is still waiting.
    let group = switchboard::kafka::GroupOffsets::new(&settings.kafka, &settings.kafka.group_id).expect("group client");
    crate::flow::wait_until("the worker joins its group", Duration::from_secs(60), || async {
        group.members().is_ok_and(|m| !m.is_empty())
    })
    .await;
    let joined = proxy.refused.load(Ordering::SeqCst);
    crate::flow::wait_until("the worker's batches retry Postgres", Duration::from_secs(60), || async {
        proxy.refused.load(Ordering::SeqCst) >= joined + 3
    })
    .await;
    assert!(!worker.is_finished(), "the worker waits for Postgres instead of finishing");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 0);

    proxy.down.store(false, Ordering::SeqCst);
    let report = tokio::time::timeout(Duration::from_secs(60), worker)
        .await
        .expect("finishes once Postgres is back")
        .unwrap()
        .unwrap();
    assert!(report.stats.retries > 0, "it retried: {:?}", report.stats);
    // However the cut connections showed (a reset, an EOF read as a bad
    // answer to the SSL request), all were waited out as the
    // infrastructure's: none counted towards isolating a record.
    assert!(report.stats.failures_by_class.is_empty(), "{:?}", report.stats.failures_by_class);
    assert_eq!(report.stats.records_applied, 20);
    assert_eq!(report.stats.records_dead_lettered, 0);
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 20);
    assert!(env.dead_letters().is_empty(), "nothing was dead-lettered");
}
