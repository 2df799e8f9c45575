//! Hostile input: a generated corpus of more than 10,000 malformed and
//! adversarial records, interleaved with good ones, through the real worker
//! process. Every bad record is dead-lettered with the reason its kind
//! calls for, every good one is stored, the worker exits cleanly (no panic,
//! no stalled partition) and its memory stays bounded.

use crate::agent::{mail, messenger, sms};
use crate::concurrency::Rng;
use crate::flow::peak_rss_kib;
use crate::harness::{dlq_headers, TestEnv};
use futures::future::join_all;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use switchboard::record::Header;
use switchboard_load::sample::{binary, email, structured, SampleRecord};

/// What a record of the corpus must end as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    Stored,
    Dead(&'static str),
}

/// The record cap the test's worker runs with: small, so oversize records
/// are cheap to make, and large enough for the 1 MB header.
const MAX_RECORD_BYTES: usize = 2 * 1024 * 1024;

fn bare(channel: &'static str, value: Vec<u8>, headers: Vec<Header>) -> SampleRecord {
    SampleRecord { channel, key: None, value, headers }
}

fn header(key: &str, value: &[u8]) -> Header {
    Header { key: key.to_owned(), value: Some(value.to_vec()) }
}

fn infobip(id: &str, from: &str, text: &str) -> SampleRecord {
    let body = serde_json::json!({"results": [{"messageId": id, "from": from, "to": "800", "text": text,
        "receivedAt": "2026-11-25T07:00:00.000+0000", "smsCount": 1}], "messageCount": 1});
    binary("sms", "sms.received", &format!("evt-{id}"), "application/json", &[], body.to_string().as_bytes())
}

/// An email from a customer to support with `headers` and `body` as given.
fn raw_mail(n: u32, headers: &str, body: &str) -> SampleRecord {
    let raw = format!(
        "From: c{n}@example.com\r\nTo: support@acme.example\r\nMessage-ID: <hostile-{n}@x>\r\n{headers}\r\n{body}"
    );
    email("support@acme.example", &format!("evt-hostile-{n}"), &raw)
}

fn nested_mime(depth: usize) -> (String, String) {
    let mut body = String::from("innermost text\r\n");
    for d in (0..depth).rev() {
        body =
            format!("--b{d}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n{body}\r\n--b{d}--\r\n", d + 1);
    }
    ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n".into(), body)
}

fn many_parts(parts: usize) -> (String, String) {
    let mut body = String::new();
    for p in 0..parts {
        body.push_str(&format!("--sep\r\nContent-Type: text/plain\r\n\r\npart {p}\r\n"));
    }
    body.push_str("--sep--\r\n");
    ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n".into(), body)
}

const SQL_AND_HTML: &str = "'); DROP TABLE messages; -- <script>alert(1)</script> \" OR 1=1 --";

/// The `n`th record of the corpus and what it must end as.
fn corpus(n: u32, rng: &mut Rng) -> (SampleRecord, Expect) {
    use Expect::*;
    let garbage = |rng: &mut Rng, len: u64| -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..16 + rng.next(len)).map(|_| rng.next(256) as u8).collect();
        bytes.extend_from_slice(&n.to_be_bytes()); // unique values
        bytes.insert(0, 0xff); // never valid UTF-8, never JSON
        bytes
    };
    match n % 25 {
        // Not CloudEvents: garbage with no headers, JSON that is not an
        // event, attributes of the wrong type, binary mode without an id.
        0..=3 => (bare("sms", garbage(rng, 300), vec![]), Dead("not_cloudevents")),
        4 => (bare("messenger", format!("[{n}, \"not an object\"]").into_bytes(), vec![]), Dead("not_cloudevents")),
        5 => (
            bare(
                "sms",
                format!(r#"{{"specversion":"1.0","id":{n},"source":"/x","type":"sms.received"}}"#).into(),
                vec![],
            ),
            Dead("not_cloudevents"),
        ),
        6 => {
            let mut r = sms(&format!("noid-{n}"), "385911", "800", "hi");
            r.headers.retain(|h| h.key != "ce_id");
            (r, Dead("not_cloudevents"))
        }
        7 => (binary("sms", "sms.deleted", &format!("u-{n}"), "application/json", &[], b"{}"), Dead("unknown_type")),
        8 => {
            let raw = format!("From: a@b.example\r\nMessage-ID: <norcpt-{n}@x>\r\n\r\nhi");
            (
                binary("email", "email.received", &format!("nr-{n}"), "message/rfc822", &[], raw.as_bytes()),
                Dead("missing_recipient"),
            )
        }
        // Bad payloads: truncated JSON, wrong JSON types, bad base64, a
        // form body that is not one.
        9 => {
            let good = sms(&format!("trunc-{n}"), "385911", "800", "hi");
            let cut = good.value.len() / 2;
            (bare("sms", good.value[..cut].to_vec(), good.headers), Dead("bad_payload"))
        }
        10 => (
            binary(
                "sms",
                "sms.received",
                &format!("wt-{n}"),
                "application/json",
                &[],
                format!(r#"{{"results":"{n}"}}"#).as_bytes(),
            ),
            Dead("bad_payload"),
        ),
        11 => (
            binary(
                "messenger",
                "messenger.received",
                &format!("wt-{n}"),
                "application/json",
                &[],
                format!(r#"{{"object":"page","entry":{n}}}"#).as_bytes(),
            ),
            Dead("bad_payload"),
        ),
        12 => {
            let event = format!(
                r#"{{"specversion":"1.0","id":"b64-{n}","source":"/x","type":"email.received","recipient":"support@acme.example","data_base64":"%%%not base64 {n}%%%"}}"#
            );
            (
                bare("email", event.into(), vec![header("content-type", b"application/cloudevents+json")]),
                Dead("bad_payload"),
            )
        }
        // Addresses that normalize to nothing.
        13 => (infobip(&format!("addr-{n}"), "+() -", "hi"), Dead("bad_address")),
        14 => (messenger(&format!("m-addr-{n}"), "", "900", None), Dead("bad_address")),
        // Adversarial but valid: stored as sent.
        15 => (infobip(&format!("sql-{n}"), &format!("38591{n}"), SQL_AND_HTML), Stored),
        16 => {
            let mut r =
                mail("support@acme.example", &format!("sqlmail-{n}@x"), &format!("x{n}@example.com"), None, &[], "");
            let raw = String::from_utf8(r.value.clone()).unwrap().replace("About my order", SQL_AND_HTML);
            r.value = raw.into_bytes();
            (r, Stored)
        }
        17 => (
            structured(
                "sms",
                "sms.received",
                &format!("st-{n}"),
                "application/json",
                &[],
                sms(&format!("st-{n}"), &format!("4479{n}"), "800", "<b>bold</b>").value.as_slice(),
            ),
            Stored,
        ),
        _ => match n % 7 {
            0 => (sms(&format!("good-{n}"), &format!("3859{}", rng.next(500)), "800", "hello"), Stored),
            1 => (messenger(&format!("good-m-{n}"), &format!("{}", 7000 + rng.next(300)), "900", None), Stored),
            _ => (
                mail(
                    "support@acme.example",
                    &format!("good-{n}@x"),
                    &format!("g{}@example.com", rng.next(300)),
                    None,
                    &[],
                    "",
                ),
                Stored,
            ),
        },
    }
}

/// Rare, heavy records: a few of each, all valid mail except the oversize.
fn heavy(n: u32) -> Vec<(SampleRecord, Expect)> {
    let big_header = format!("X-Junk: {}\r\n", "j".repeat(1024 * 1024));
    let huge_subject = format!("Subject: {}\r\n", "s".repeat(100 * 1024));
    let (nested_h, nested_b) = nested_mime(60);
    let (parts_h, parts_b) = many_parts(3000);
    let mut out = vec![
        (raw_mail(n, &big_header, "body"), Expect::Stored),
        (raw_mail(n + 1, &huge_subject, "body"), Expect::Stored),
        (raw_mail(n + 2, &nested_h, &nested_b), Expect::Stored),
        (raw_mail(n + 3, &parts_h, &parts_b), Expect::Stored),
        // A charset nobody knows, and a multipart cut off mid-part.
        (raw_mail(n + 4, "Content-Type: text/plain; charset=x-unheard-of-42\r\n", "caf\u{e9}"), Expect::Stored),
        (
            raw_mail(
                n + 5,
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"cut\"\r\n",
                "--cut\r\nContent-Type: text/plain\r\n\r\nthe rest is miss",
            ),
            Expect::Stored,
        ),
        // NUL bytes, which Postgres refuses in text: removed, the mail kept.
        (raw_mail(n + 6, "Subject: =?utf-8?Q?a=00b?=\r\n", "before\0after"), Expect::Stored),
    ];
    let mut oversize = sms(&format!("big-{n}"), "385911", "800", "x");
    oversize.value.resize(MAX_RECORD_BYTES + 1024, b' ');
    out.push((oversize, Expect::Dead("too_large")));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hostile_records_are_dead_lettered_with_their_reason_and_good_ones_stored() {
    let env = TestEnv::new(4).await;
    let mut rng = Rng(0x00ba_d1e5);
    let mut records: Vec<(SampleRecord, Expect)> = (0..17_500).map(|n| corpus(n, &mut rng)).collect();
    for (i, n) in (0..5).map(|i| (i, 1_000_000 + i * 10)) {
        // Spread the heavy ones through the corpus.
        for (k, r) in heavy(n).into_iter().enumerate() {
            records.insert((i as usize * 3_400 + k * 7).min(records.len()), r);
        }
    }
    let bad = records.iter().filter(|(_, e)| *e != Expect::Stored).count();
    assert!(bad >= 10_000, "the corpus has {bad} bad records");

    // Publish, remembering where each record landed.
    let mut expected: HashMap<String, Expect> = HashMap::new();
    for chunk in records.chunks(500) {
        let placed = join_all(chunk.iter().map(|(r, _)| async {
            let topic = env.topic(r.channel);
            let (p, o) = env.publisher.publish(&topic, None, Some(&r.value), &r.headers).await.expect("publish");
            format!("{topic}/{p}/{o}")
        }))
        .await;
        expected.extend(placed.into_iter().zip(chunk.iter().map(|(_, e)| *e)));
    }

    let child = env
        .worker_command(&["run", "--stop-at-end"])
        .env("SWITCHBOARD__WORKER__MAX_RECORD_BYTES", MAX_RECORD_BYTES.to_string())
        .spawn()
        .expect("start the worker");
    let pid = child.id().expect("running");
    let mut peak = 0;
    let waiting = child.wait_with_output();
    tokio::pin!(waiting);
    let out = loop {
        tokio::select! {
            out = &mut waiting => break out.expect("worker output"),
            _ = tokio::time::sleep(Duration::from_millis(100)) => peak = peak.max(peak_rss_kib(pid).unwrap_or(0)),
        }
    };
    assert!(out.status.success(), "the worker exits cleanly: {}", out.status);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("counters");

    // Every bad record is on the dead-letter topic with its kind's reason.
    let mut dead: BTreeMap<String, usize> = BTreeMap::new();
    for letter in env.dead_letters() {
        let h = dlq_headers(&letter);
        let source = &h["dlq_source"];
        let reason = h["dlq_reason"].clone();
        let wanted = match expected.get(source) {
            Some(Expect::Dead(r)) => Some(*r),
            _ => None,
        };
        assert_eq!(wanted, Some(reason.as_str()), "{source}: {h:?}");
        *dead.entry(reason).or_default() += 1;
    }
    let mut wanted: BTreeMap<String, usize> = BTreeMap::new();
    for e in expected.values() {
        if let Expect::Dead(reason) = e {
            *wanted.entry((*reason).to_owned()).or_default() += 1;
        }
    }
    assert_eq!(dead, wanted, "dead letters per reason");

    // Every good record is stored, once.
    let good = expected.values().filter(|e| **e == Expect::Stored).count() as i64;
    assert_eq!(env.count("SELECT count(*) FROM messages").await, good);
    assert_eq!(stats["records"].as_u64(), Some(expected.len() as u64), "{stats}");
    eprintln!("hostile corpus: {} records, {bad} bad, peak RSS {} MiB, {stats}", expected.len(), peak / 1024);
    // Bounded memory: the record cap times a few copies, plus the runtime.
    assert!(peak < 400 * 1024, "peak RSS {} MiB", peak / 1024);
}
