//! Issue 7, item 3: memory is bounded by bytes. 200 emails of 5 MiB go
//! through the worker process; its peak resident memory stays below the
//! byte caps plus 150 MiB.

use crate::flow::{peak_rss_kib, producer, publish_to_partition};
use crate::harness::TestEnv;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use std::time::Duration;
use switchboard_load::sample::email;

const MIB: u64 = 1024 * 1024;

/// A raw email of about `size` bytes: a short text and a base64 attachment.
fn big_email(n: usize, size: usize) -> String {
    let mut raw = format!(
        "From: Big Sender <big{n}@example.com>\r\nTo: support@acme.example\r\nSubject: Scans {n}\r\nMessage-ID: <big-{n}@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe scans are attached.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"scan.bin\"\r\n\r\n"
    );
    // Pseudo-random base64 lines, different per email, so nothing dedupes.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ n as u64;
    let mut line = Vec::with_capacity(78);
    while raw.len() < size {
        line.clear();
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            line.push(alphabet[(x % 64) as usize]);
        }
        raw.push_str(std::str::from_utf8(&line).expect("ascii"));
        raw.push_str("\r\n");
    }
    raw.push_str("--b--\r\n");
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_emails_of_5_mib_stay_within_the_byte_caps() {
    let env = TestEnv::new(2).await;
    let topic = env.topic("email");
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &env.settings.kafka.bootstrap_servers).create().unwrap();
    let alter = AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("max.message.bytes", "12582912");
    for r in admin.alter_configs(&[alter], &AdminOptions::new()).await.unwrap() {
        r.expect("topic takes 12 MiB records");
    }
    let kafka = producer(&env);
    let emails: usize = std::env::var("SWITCHBOARD_TEST_BIG_EMAILS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    for chunk in 0..emails / 10 {
        let records: Vec<_> = (0..10)
            .map(|i| {
                let n = chunk * 10 + i;
                email("support@acme.example", &format!("evt-big-{n}"), &big_email(n, 5 * MIB as usize))
            })
            .collect();
        publish_to_partition(&env, &kafka, (chunk % 2) as i32, &records).await;
    }

    let mut worker = env
        .worker_command(&["run", "--stop-at-end"])
        .env("RUST_LOG", std::env::var("SWITCHBOARD_TEST_WORKER_LOG").unwrap_or_else(|_| "info".into()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the worker");
    let pid = worker.id().expect("running");
    // The worker's log, kept whole so that a failure shows why it exited.
    let log = tokio::spawn({
        use tokio::io::AsyncReadExt as _;
        let mut stderr = worker.stderr.take().expect("piped");
        async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        }
    });
    let mut peak_kib = 0;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = worker.try_wait().expect("wait") {
            break status;
        }
        // VmHWM is the peak so far; read it while the process lives.
        if let Some(kib) = peak_rss_kib(pid) {
            peak_kib = peak_kib.max(kib);
        }
        assert!(started.elapsed() < Duration::from_secs(900), "the worker did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = log.await.expect("log reader");
    assert!(status.success(), "exit status {status}; the worker's log:\n{log}");
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE octet_length(raw) > 5000000").await, emails as i64);

    let w = &env.settings.worker;
    let caps = 2 * w.partition_queue_bytes as u64 + 16 * MIB; // two partitions' buffers + librdkafka's queue
    let peak = peak_kib * 1024;
    eprintln!("peak RSS {} MiB, caps {} MiB", peak / MIB, caps / MIB);
    assert!(peak < caps + 150 * MIB, "peak RSS {} MiB exceeds the caps ({} MiB) + 150 MiB", peak / MIB, caps / MIB);
}

/// Issue 11 (memory): a batch's messages are written in chunks of about
/// 512 KiB, so no pooled connection keeps a buffer the size of a whole
/// batch of emails. The chunks must not lose or change anything. One batch
/// of forty 40 KiB emails and a reply (four chunks: emails 0-11 in the
/// first, the reply with emails 12-23 in the second) is placed through the
/// store in one transaction: every email lands byte for byte, and the reply
/// joins its parent's conversation from an earlier chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_written_in_chunks_land_whole_and_a_reply_finds_its_parent_in_an_earlier_chunk() {
    use sha2::{Digest, Sha256};
    use switchboard::placement::Policy;
    use switchboard::store::{Item, Outcome, Store};

    let env = TestEnv::new(1).await;
    let mut expected = std::collections::BTreeMap::new();
    let mut raws = Vec::new();
    for n in 0..40 {
        let raw = big_email(n, 40 * 1024);
        expected.insert(format!("big-{n}@example.com"), hex::encode(Sha256::digest(raw.as_bytes())));
        raws.push(raw);
        if n == 20 {
            raws.push("From: Big Sender <big3@example.com>\r\nTo: support@acme.example\r\nSubject: Re: Scans 3\r\nMessage-ID: <reply-3@example.com>\r\nIn-Reply-To: <big-3@example.com>\r\n\r\nAnd one more.\r\n".to_owned());
        }
    }
    let samples =
        raws.iter().enumerate().map(|(n, raw)| email("support@acme.example", &format!("evt-chunk-{n}"), raw)).collect();
    let items: Vec<Item> = env
        .decoded_items(samples, 10 * MIB as usize)
        .into_iter()
        .map(|decoded| {
            let mut items = decoded.expect("decodes");
            assert_eq!(items.len(), 1);
            items.remove(0)
        })
        .collect();
    let batch: Vec<&Item> = items.iter().collect();
    let placed = Store::from_pool(env.pool.clone()).apply_batch(&batch, &Policy::default()).await.expect("placed");
    assert!(placed.outcomes.iter().all(|o| matches!(o, Outcome::Applied { .. })));

    let stored: Vec<(String, String)> = sqlx::query_as(
        "SELECT external_id, encode(sha256(raw), 'hex') FROM messages WHERE external_id LIKE 'big-%' ORDER BY external_id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(stored.into_iter().collect::<std::collections::BTreeMap<_, _>>(), expected);
    let parent = crate::agent::conversation_of(&env.pool, "big-3@example.com", "support@acme.example").await;
    let reply = crate::agent::conversation_of(&env.pool, "reply-3@example.com", "support@acme.example").await;
    assert_eq!(reply, parent, "the reply joins its parent's conversation");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 41);
}
