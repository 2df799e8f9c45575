//! Contract section 1: records written by the official CloudEvents Python
//! SDK (both APIs, both modes, the 1.x `to_structured` that puts the payload's
//! type in `content-type`) are placed, none dead-lettered. The records are the
//! SDK's own bytes, committed under `tests/fixtures/cloudevents/`.

use crate::harness::TestEnv;
use switchboard::record::Header;
use switchboard_load::sample::SampleRecord;

/// Every fixture, with the topic it is published to.
const FIXTURES: [(&str, &str); 10] = [
    ("v1_binary_email", "email"),
    ("v1_structured_email", "email"),
    ("v1_binary_infobip", "sms"),
    ("v1_structured_infobip", "sms"),
    ("v1_structured_twilio", "sms"),
    ("v1_structured_messenger_no_content_type", "messenger"),
    ("core_binary_email", "email"),
    ("core_structured_email", "email"),
    ("core_binary_messenger", "messenger"),
    ("core_structured_infobip", "sms"),
];

/// A fixture as the SDK made it: value byte for byte, headers and key.
fn sdk_record(name: &str, channel: &'static str) -> SampleRecord {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudevents");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).expect("metadata")).expect("JSON");
    let headers = meta["headers"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|pair| Header {
            key: pair[0].as_str().expect("name").to_owned(),
            value: Some(pair[1].as_str().expect("value").as_bytes().to_vec()),
        })
        .collect();
    SampleRecord {
        channel,
        key: meta["key"].as_str().map(|k| k.as_bytes().to_vec()),
        value: std::fs::read(dir.join(format!("{name}.value"))).expect("value"),
        headers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_by_the_cloudevents_python_sdk_are_placed_in_both_modes_and_both_apis() {
    let env = TestEnv::new(2).await;
    for (name, channel) in FIXTURES {
        env.publish(&sdk_record(name, channel)).await;
    }
    let stats = env.run_to_end().await;
    assert_eq!(stats.records_dead_lettered, 0, "{:?}", stats.dead_letters_by_reason);
    assert_eq!(stats.records_applied, 10);
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 10);
    // One customer per channel, so one conversation each: the four emails
    // thread by pair (R3), as do the four SMS and the two Messenger messages.
    let per_pair = "SELECT count(DISTINCT conversation_id) FROM messages GROUP BY channel, endpoint, contact";
    let pairs: Vec<i64> = sqlx::query_scalar(per_pair).fetch_all(&env.pool).await.unwrap();
    assert_eq!(pairs.len(), 4, "email, Infobip, Twilio and Messenger pairs");
    assert!(pairs.iter().all(|n| *n == 1), "{pairs:?}");
    assert_eq!(
        env.count("SELECT count(*) FROM messages WHERE channel = 'email' AND endpoint = 'support@acme.example' AND contact = 'ana.horvat@example.com' AND raw IS NOT NULL").await,
        4
    );
    assert!(env.dead_letters().is_empty());
}
