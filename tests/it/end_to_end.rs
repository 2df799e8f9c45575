//! The walking skeleton: each type and mode is consumed and placed, with its
//! source coordinates; duplicates and replays change nothing.

use crate::harness::TestEnv;
use switchboard_load::sample::{self, binary, email, structured};

const INFOBIP: &str = r#"{"results":[{"messageId":"ib-1","from":"(800) 100-20000","to":"385916242493","text":"Hi","cleanText":"Hi","keyword":"","receivedAt":"2026-11-25T07:00:00.000+0000","smsCount":1},{"messageId":"ib-2","from":"800-100-20000","to":"00385916242493","text":"Still there?","cleanText":"Still there?","keyword":"","receivedAt":"2026-11-25T07:05:00.000+0000","smsCount":1}],"messageCount":2,"pendingMessageCount":0}"#;
const TWILIO: &str = "MessageSid=SM11&From=%28800%29-100-20000&To=%2B385+91+624+2493&Body=third&NumMedia=1&MediaUrl0=https%3A%2F%2Fapi.example.com%2Fm%2F1.jpg&MediaContentType0=image%2Fjpeg";
const MESSENGER: &str = r#"{"object":"page","entry":[{"id":"104729","time":1764054000000,"messaging":[{"sender":{"id":6178123},"recipient":{"id":"104729"},"timestamp":1764054000000,"message":{"mid":"m_1","text":"hello"}},{"sender":{"id":"104729"},"recipient":{"id":"6178123"},"timestamp":1764054001000,"message":{"mid":"m_echo","text":"auto","is_echo":true}},{"sender":{"id":"6178123"},"recipient":{"id":"104729"},"timestamp":1764054002000,"read":{"watermark":1764054001000}}]},{"id":"104729","time":1764054100000,"messaging":[{"sender":{"id":"6178123"},"recipient":{"id":104729},"timestamp":1764054100000,"postback":{"title":"Talk to a person","payload":"HUMAN","mid":"m_pb"}}]}]}"#;

fn mail(id: &str, from: &str, body: &str) -> String {
    format!("From: Ana <{from}>\r\nTo: support@acme.example\r\nSubject: Help\r\nMessage-ID: <{id}>\r\nDate: Wed, 25 Nov 2026 08:00:00 +0100\r\n\r\n{body}\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_in_both_modes_is_placed_with_its_source_coordinates() {
    let env = TestEnv::new(2).await;
    env.publish(&email("Support@Acme.example", "e1", &mail("a1@example.com", "Ana@Example.com", "binary mode"))).await;
    env.publish(&structured(
        "email",
        "email.received",
        "e2",
        "message/rfc822",
        &[("recipient", "support@acme.example")],
        mail("a2@example.com", "ana@example.com", "structured").as_bytes(),
    ))
    .await;
    env.publish(&binary("sms", "sms.received", "s1", "application/json", &[], INFOBIP.as_bytes())).await;
    env.publish(&structured("sms", "sms.received", "s2", "application/x-www-form-urlencoded", &[], TWILIO.as_bytes()))
        .await;
    env.publish(&binary("messenger", "messenger.received", "f1", "application/json", &[], MESSENGER.as_bytes())).await;

    // The other mode of each SMS format and of Messenger: the same payloads
    // again are duplicates, so they must decode to the very same messages.
    env.publish(&structured("sms", "sms.received", "s1b", "application/json", &[], INFOBIP.as_bytes())).await;
    env.publish(&binary("sms", "sms.received", "s2b", "application/x-www-form-urlencoded", &[], TWILIO.as_bytes()))
        .await;
    env.publish(&structured("messenger", "messenger.received", "f1b", "application/json", &[], MESSENGER.as_bytes()))
        .await;

    let stats = env.run_to_end().await;
    assert_eq!(stats.records, 8);
    assert_eq!(stats.records_applied, 5);
    assert_eq!(stats.records_duplicate, 3, "the same messages in the other mode");
    assert_eq!(stats.skipped_entries.get("echo"), Some(&2));
    assert_eq!(stats.skipped_entries.get("read"), Some(&2));

    // Both emails: one pair (normalized endpoint and contact), one conversation.
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE channel = 'email'").await, 2);
    assert_eq!(env.count("SELECT count(DISTINCT conversation_id) FROM messages WHERE channel = 'email' AND endpoint = 'support@acme.example' AND contact = 'ana@example.com'").await, 1);
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE channel = 'email' AND raw IS NOT NULL AND external_id IN ('a1@example.com', 'a2@example.com')").await, 2);
    // Three SMS in two formats and four phone spellings: one pair, one conversation.
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE channel = 'sms' AND endpoint = '385916242493' AND contact = '80010020000'").await, 3);
    assert_eq!(env.count("SELECT count(DISTINCT conversation_id) FROM messages WHERE channel = 'sms'").await, 1);
    // Messenger: the message and the postback, numeric ids as strings; echo and read skipped.
    assert_eq!(
        env.count(
            "SELECT count(*) FROM messages WHERE channel = 'messenger' AND endpoint = '104729' AND contact = '6178123'"
        )
        .await,
        2
    );
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE channel = 'messenger' AND external_id = 'm_pb' AND body_text = 'Talk to a person'").await, 1);
    // Every message knows where it came from.
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE kafka_topic IS NULL OR kafka_partition IS NULL OR kafka_offset IS NULL").await, 0);
    let sms_topic = env.topic("sms");
    let sms_sources: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT kafka_offset::text || '/' || kafka_partition) FROM messages WHERE kafka_topic = $1",
    )
    .bind(&sms_topic)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(sms_sources, 2, "three SMS from two records");
    // One conversation per pair, each with its channel row and a `created` event.
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, 3);
    assert_eq!(env.count("SELECT count(*) FROM conversation_channels").await, 3);
    assert_eq!(env.count("SELECT count(*) FROM conversation_events WHERE kind = 'created' AND from_status IS NULL AND to_status = 'open'").await, 3);
    assert_eq!(env.count("SELECT count(*) FROM conversations WHERE status = 'open' AND priority = 'normal' AND topic = 'Talking with ana@example.com'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_customer_is_attached_and_named() {
    let env = TestEnv::new(1).await;
    sqlx::query(
        "INSERT INTO people (id, name, city) VALUES ('00000000-0000-0000-0000-0000000000aa', 'Ana Horvat', 'Zagreb')",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO person_contacts (person_id, channel, address) VALUES ('00000000-0000-0000-0000-0000000000aa', 'sms', '80010020000')")
        .execute(&env.pool)
        .await
        .unwrap();
    env.publish(&binary("sms", "sms.received", "s1", "application/json", &[], INFOBIP.as_bytes())).await;
    env.run_to_end().await;
    assert_eq!(env.count("SELECT count(*) FROM conversations WHERE customer_id = '00000000-0000-0000-0000-0000000000aa' AND topic = 'Talking with Ana Horvat'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_record_and_a_replay_with_a_new_group_change_nothing() {
    let env = TestEnv::new(3).await;
    for r in sample::demo_traffic() {
        env.publish(&r).await;
    }
    let first = env.run_to_end().await;
    assert_eq!(first.records, 10);
    assert_eq!(first.records_duplicate, 1, "the gateway's retry of one email");
    assert_eq!(first.records_dead_lettered, 1);
    let before = env.snapshot().await;

    // The same group again: offsets were committed, nothing is re-read.
    let again = env.run_to_end().await;
    assert_eq!(again.records, 0);

    // A new group replays everything from offset zero: all duplicates.
    let replay = env.run_to_end_with(&env.with_new_group()).await;
    assert_eq!(replay.records, 10);
    assert_eq!(replay.records_applied, 0);
    assert_eq!(replay.records_duplicate, 9);
    assert_eq!(replay.records_dead_lettered, 1, "bad input is dead-lettered again, never stored");
    assert_eq!(env.snapshot().await, before);
}
