//! Synthetic traffic for load tests and benchmarks: a deterministic mix of
//! email, SMS and Messenger records over a fixed population of customers,
//! with some replies and some copies of one email to two inboxes.

use crate::sample::{binary, email, SampleRecord};

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// How many records.
    pub records: u64,
    /// How many distinct customers per channel; fewer means more appends.
    pub customers: u64,
    /// Makes runs with different seeds produce different ids.
    pub seed: u64,
    /// Key records by the customer's address, as the contract asks gateways
    /// to; without keys, one customer's messages spread over all partitions
    /// (the misbehaving-gateway case).
    pub keyed: bool,
}

/// The `n`th record of the mix. Ids are unique per (seed, n), so a second
/// run with the same seed is pure duplicates (a replay), another seed is new
/// traffic.
pub fn record(mix: &Mix, n: u64) -> SampleRecord {
    let customer = spread(n, mix.seed) % mix.customers.max(1);
    let mut record = unkeyed(mix, n, customer);
    if mix.keyed {
        record.key = Some(format!("{}-{customer}", record.channel).into_bytes());
    }
    record
}

fn unkeyed(mix: &Mix, n: u64, customer: u64) -> SampleRecord {
    let id = format!("lg{}-{n}", mix.seed);
    match n % 10 {
        0..=3 => {
            let body = format!(
                r#"{{"results":[{{"messageId":"{id}","from":"385{customer:09}","to":"800100200","text":"Load test message {n}","receivedAt":"2026-11-25T07:00:00.000+0000","smsCount":1}}],"messageCount":1,"pendingMessageCount":0}}"#
            );
            binary("sms", "sms.received", &format!("evt-{id}"), "application/json", &[], body.as_bytes())
        }
        4..=6 => {
            let body = format!(
                r#"{{"object":"page","entry":[{{"id":"104729","time":1764054000000,"messaging":[{{"sender":{{"id":"{}"}},"recipient":{{"id":"104729"}},"timestamp":1764054000000,"message":{{"mid":"{id}","text":"Load test message {n}"}}}}]}}]}}"#,
                9_000_000 + customer
            );
            binary("messenger", "messenger.received", &format!("evt-{id}"), "application/json", &[], body.as_bytes())
        }
        _ => {
            // Every third email replies to the customer's previous one.
            let reply = if n.is_multiple_of(3) && n >= 10 {
                format!("In-Reply-To: <lg{}-{}@load.example>\r\n", mix.seed, n - 10)
            } else {
                String::new()
            };
            let raw = format!(
                "From: Customer {customer} <c{customer}@load.example>\r\nTo: support@acme.example\r\nSubject: Load test {n}\r\nMessage-ID: <{id}@load.example>\r\n{reply}Date: Wed, 25 Nov 2026 08:00:00 +0100\r\n\r\nLoad test message {n}.\r\n"
            );
            email("support@acme.example", &format!("evt-{id}"), &raw)
        }
    }
}

/// A cheap, deterministic scramble so customers are not visited in order.
fn spread(n: u64, seed: u64) -> u64 {
    let mut x = n.wrapping_add(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;
    use crate::record::SourceRecord;

    fn as_record(s: &SampleRecord, offset: i64) -> SourceRecord {
        SourceRecord {
            topic: s.channel.into(),
            partition: 0,
            offset,
            timestamp_ms: Some(0),
            key: None,
            value: Some(s.value.clone()),
            headers: s.headers.clone(),
        }
    }

    #[test]
    fn every_generated_record_decodes_to_one_message_with_a_unique_id() {
        let mix = Mix { records: 200, customers: 20, seed: 7, keyed: true };
        let mut ids = std::collections::HashSet::new();
        for n in 0..mix.records {
            let decoded = decode(&as_record(&record(&mix, n), n as i64), 1 << 20).expect("decodes");
            assert_eq!(decoded.messages.len(), 1);
            assert!(ids.insert(decoded.messages[0].external_id.to_string()));
        }
    }

    #[test]
    fn keyed_records_carry_one_key_per_customer_and_channel() {
        let mix = Mix { records: 100, customers: 3, seed: 1, keyed: true };
        let keys: std::collections::HashSet<Vec<u8>> = (0..mix.records).filter_map(|n| record(&mix, n).key).collect();
        assert_eq!(keys.len(), 9, "three customers on three channels");
        assert!(record(&Mix { keyed: false, ..mix }, 5).key.is_none());
    }

    #[test]
    fn the_same_seed_gives_the_same_records() {
        let mix = Mix { records: 10, customers: 5, seed: 1, keyed: false };
        assert_eq!(record(&mix, 3), record(&mix, 3));
        assert_ne!(record(&mix, 3), record(&Mix { seed: 2, ..mix }, 3));
    }
}
