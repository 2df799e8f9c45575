//! Contract section 5: a record carrying several messages is not
//! all-or-nothing. Its valid messages are placed; the record is also
//! dead-lettered whole, as received, with `dlq_detail` naming the invalid
//! items; a redrive places nothing new (the valid ones are duplicates).

use crate::harness::{dlq_headers, TestEnv};
use switchboard::dead_letter::headers as dlq;
use switchboard::record::Header;
use switchboard_load::sample::{binary, SampleRecord};

const INFOBIP: &str = r#"{"results":[
  {"messageId":"ib-ok-0","from":"385916242493","to":"800","text":"first","receivedAt":"2026-11-25T07:00:00.000+0000"},
  {"messageId":"ib-bad-1","from":"","to":"800","text":"no sender","receivedAt":"2026-11-25T07:01:00.000+0000"},
  {"messageId":"ib-ok-2","from":"385916242494","to":"800","text":"third","receivedAt":"2026-11-25T07:02:00.000+0000"}
]}"#;
const MESSENGER: &str = r#"{"object":"page","entry":[{"id":"104729","time":1764054000000,"messaging":[
  {"sender":{"id":"6178123"},"recipient":{"id":"104729"},"timestamp":1764054000000,"message":{"mid":"m_ok","text":"hello"}},
  {"sender":{"id":"6178123"},"recipient":{"id":"104729"},"timestamp":1764054001000,"message":{"text":"no mid"}}
]}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_items_of_a_partly_invalid_batch_are_placed_and_the_record_is_dead_lettered_whole() {
    let env = TestEnv::new(1).await;
    let sms = binary("sms", "sms.received", "evt-ib", "application/json", &[], INFOBIP.as_bytes());
    let fb = binary("messenger", "messenger.received", "evt-fb", "application/json", &[], MESSENGER.as_bytes());
    env.publish(&sms).await;
    env.publish(&fb).await;

    let stats = env.run_to_end().await;
    assert_eq!(stats.records_dead_lettered, 2);
    assert_eq!(stats.records_applied, 0, "a record ends one way only");
    assert_eq!(stats.messages_by_rule.values().sum::<u64>(), 3, "{:?}", stats.messages_by_rule);
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE external_id IN ('ib-ok-0', 'ib-ok-2', 'm_ok')").await, 3);
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 3);

    let letters = env.dead_letters();
    assert_eq!(letters.len(), 2);
    for (original, invalid, reason) in
        [(&sms, "Infobip result 1", "bad_address"), (&fb, "messaging item 1 of entry 0", "bad_payload")]
    {
        let letter =
            letters.iter().find(|l| l.value.as_deref() == Some(original.value.as_slice())).expect("kept whole");
        for header in &original.headers {
            assert!(letter.headers.contains(header), "header {} kept", header.key);
        }
        let h = dlq_headers(letter);
        assert_eq!(h["dlq_reason"], reason);
        assert!(h["dlq_detail"].contains(invalid), "{}", h["dlq_detail"]);
    }

    // A redrive: an operator publishes the dead letters back as they were.
    for letter in &letters {
        let headers: Vec<Header> =
            letter.headers.iter().filter(|h| !dlq::ALL.contains(&h.key.as_str())).cloned().collect();
        let channel = if headers.iter().any(|h| h.value.as_deref() == Some(b"sms.received".as_slice())) {
            "sms"
        } else {
            "messenger"
        };
        env.publish(&SampleRecord { channel, key: None, value: letter.value.clone().unwrap_or_default(), headers })
            .await;
    }
    let before = env.snapshot().await;
    let again = env.run_to_end().await;
    assert_eq!(again.messages_by_rule.get("r0_duplicate"), Some(&3), "{:?}", again.messages_by_rule);
    assert_eq!(again.records_dead_lettered, 2, "the invalid items are still invalid");
    assert_eq!(env.snapshot().await, before, "the redrive changed nothing");
}
