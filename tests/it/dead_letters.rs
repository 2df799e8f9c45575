//! Contract section 5: every reason code is reachable, the dead letter keeps
//! the original and says why, and good records around bad ones still land.

use crate::harness::{dlq_headers, TestEnv};
use switchboard_load::sample::{binary, email};

const GOOD_SMS: &str = r#"{"results":[{"messageId":"ok-1","from":"+385 91 624 2493","to":"800","text":"fine","receivedAt":"2026-11-25T07:00:00.000+0000","smsCount":1}],"messageCount":1,"pendingMessageCount":0}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reason_code_is_dead_lettered_with_the_original_and_its_source() {
    let env = TestEnv::with(1, |s| s.worker.max_record_bytes = 4096).await;
    // A time Postgres cannot hold (about 251,000 BC; chrono can, Postgres
    // stops at 4713 BC): it refuses it (datetime_field_overflow). The
    // unindexable 3,200-byte id this test used before is now too_large in
    // decoding (ids are bounded at 998 bytes), and NUL bytes no longer reach
    // Postgres either.
    let before_postgres_time = r#"{"object":"page","entry":[{"id":"900","time":1,"messaging":[{"sender":{"id":"7021"},"recipient":{"id":"900"},"timestamp":-8000000000000000,"message":{"mid":"m-ancient","text":"hi"}}]}]}"#;
    let mail = "From: ana@example.com\r\nMessage-ID: <x@example.com>\r\nSubject: hi\r\n\r\nbody\r\n";
    let bad: Vec<(&str, switchboard_load::sample::SampleRecord)> = vec![
        (
            "not_cloudevents",
            switchboard_load::sample::SampleRecord {
                channel: "sms",
                key: None,
                value: b"hello".to_vec(),
                headers: vec![],
            },
        ),
        ("unknown_type", binary("sms", "fax.received", "u1", "application/json", &[], GOOD_SMS.as_bytes())),
        ("missing_recipient", binary("email", "email.received", "m1", "message/rfc822", &[], mail.as_bytes())),
        ("bad_payload", binary("sms", "sms.received", "b1", "application/json", &[], b"{\"results\": [")),
        (
            "bad_address",
            binary(
                "sms",
                "sms.received",
                "a1",
                "application/json",
                &[],
                GOOD_SMS.replace("+385 91 624 2493", "call me").as_bytes(),
            ),
        ),
        (
            "too_large",
            binary(
                "sms",
                "sms.received",
                "t1",
                "application/json",
                &[],
                format!("{GOOD_SMS}{}", " ".repeat(5000)).as_bytes(),
            ),
        ),
        (
            "rejected_by_store",
            binary("messenger", "messenger.received", "r1", "application/json", &[], before_postgres_time.as_bytes()),
        ),
    ];
    for (_, record) in &bad {
        env.publish(record).await;
    }
    // Good records before and after the bad ones, in the same partition.
    env.publish(&binary("sms", "sms.received", "g1", "application/json", &[], GOOD_SMS.as_bytes())).await;
    env.publish(&email("support@acme.example", "g2", mail)).await;

    let stats = env.run_to_end().await;
    assert_eq!(stats.records_dead_lettered, 7);
    assert_eq!(stats.records_applied, 2);
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 2);
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE external_id = 'm-ancient'").await, 0);

    let letters = env.dead_letters();
    assert_eq!(letters.len(), 7);
    for (reason, original) in &bad {
        let letter = letters
            .iter()
            .find(|l| dlq_headers(l).get("dlq_reason").map(String::as_str) == Some(*reason))
            .unwrap_or_else(|| panic!("no dead letter with reason {reason}"));
        let h = dlq_headers(letter);
        assert_eq!(letter.value.as_deref(), Some(original.value.as_slice()), "{reason}: value kept byte for byte");
        for header in &original.headers {
            assert!(letter.headers.contains(header), "{reason}: header {} kept", header.key);
        }
        assert!(
            h["dlq_source"].starts_with(&format!("{}/", env.topic(original.channel))),
            "{reason}: {}",
            h["dlq_source"]
        );
        assert!(!h["dlq_detail"].is_empty(), "{reason}: a detail for a person");
        assert!(chrono::DateTime::parse_from_rfc3339(&h["dlq_at"]).is_ok(), "{reason}: dlq_at is a time");
    }
    // Operators read them with `switchboard dead-letters`.
    let out = env.worker_command(&["dead-letters"]).output().await.expect("dead-letters runs");
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&format!("7 dead letters on {}", env.topic("dlq"))), "{listing}");
    for (reason, _) in &bad {
        assert!(listing.contains(reason), "{reason} listed: {listing}");
    }
    // The offsets moved past the poison: a second run reads nothing again.
    assert_eq!(env.run_to_end().await.records, 0);
}
