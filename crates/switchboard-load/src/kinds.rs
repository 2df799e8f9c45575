//! The records of each kind. Ids are `lg<seed>-<n>`, unique per seed and
//! position, so a second run with the same seed is all duplicates (a replay)
//! and another seed is new traffic.

use super::rng::SplitMix;
use super::Mix;
use crate::sample::{binary, email, SampleRecord};

/// What a generated record is meant to exercise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A new message (R3 or R4, depending on the customer's history).
    New,
    /// A gateway retry: an earlier record published again byte for byte (R0).
    Duplicate,
    /// An earlier email's copy delivered to a second inbox (R7).
    Sibling,
    /// A reply to an earlier message of the same customer (R1, or R2 when an
    /// agent closed the conversation meanwhile).
    Reply,
    /// An out-of-office reply (R6).
    Automatic,
    /// A record that is dead-lettered.
    Malformed,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::New, Kind::Duplicate, Kind::Sibling, Kind::Reply, Kind::Automatic, Kind::Malformed];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::Duplicate => "duplicate",
            Kind::Sibling => "sibling",
            Kind::Reply => "reply",
            Kind::Automatic => "automatic",
            Kind::Malformed => "malformed",
        }
    }
}

fn keyed(mut record: SampleRecord, mix: &Mix, customer: u64) -> SampleRecord {
    if mix.keyed {
        record.key = Some(format!("{}-{customer}", record.channel).into_bytes());
    }
    record
}

fn id(mix: &Mix, n: u64) -> String {
    format!("lg{}-{n}", mix.seed)
}

fn sms(mix: &Mix, n: u64, customer: u64) -> SampleRecord {
    let id = id(mix, n);
    let body = format!(
        r#"{{"results":[{{"messageId":"{id}","from":"385{customer:09}","to":"800100200","text":"Load test message {n}","receivedAt":"2026-11-25T07:00:00.000+0000","smsCount":1}}],"messageCount":1,"pendingMessageCount":0}}"#
    );
    binary("sms", "sms.received", &format!("evt-{id}"), "application/json", &[], body.as_bytes())
}

fn messenger(mix: &Mix, n: u64, customer: u64, reply_to: Option<u64>) -> SampleRecord {
    let id = id(mix, n);
    let reply = reply_to.map_or_else(String::new, |to| format!(r#","reply_to":{{"mid":"lg{}-{to}"}}"#, mix.seed));
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"104729","time":1764054000000,"messaging":[{{"sender":{{"id":"{}"}},"recipient":{{"id":"104729"}},"timestamp":1764054000000,"message":{{"mid":"{id}","text":"Load test message {n}"{reply}}}}}]}}]}}"#,
        9_000_000 + customer
    );
    binary("messenger", "messenger.received", &format!("evt-{id}"), "application/json", &[], body.as_bytes())
}

/// The raw source of an email, its body padded to about `mix.email_bytes`
/// with prose that differs from email to email.
fn raw_email(mix: &Mix, n: u64, customer: u64, extra_headers: &str) -> String {
    let mut raw = format!(
        "From: Customer {customer} <c{customer}@load.example>\r\nTo: support@acme.example\r\nSubject: Load test {n}\r\nMessage-ID: <{}@load.example>\r\n{extra_headers}Date: Wed, 25 Nov 2026 08:00:00 +0100\r\n\r\nLoad test message {n}.\r\n",
        id(mix, n)
    );
    pad_with_prose(&mut raw, mix.email_bytes, mix.seed ^ n.rotate_left(32));
    raw
}

/// Words customers write to a support desk, drawn at random: text that
/// compresses about as well as real mail (LZ4 about 2x). One line repeated
/// had compressed 25x on the broker and in Postgres, which made each fetch
/// unpack to 25 times its size and each stored body almost free.
#[rustfmt::skip]
const WORDS: [&str; 64] = [
    "the", "order", "parcel", "arrived", "yesterday", "but", "box", "was", "damaged", "and", "two", "items", "are",
    "missing", "please", "refund", "my", "card", "invoice", "number", "account", "password", "reset", "link",
    "does", "not", "work", "since", "Monday", "could", "you", "check", "delivery", "address", "changed", "last",
    "week", "thanks", "for", "quick", "reply", "still", "waiting", "on", "tracking", "update", "courier", "said",
    "it", "is", "in", "warehouse", "subscription", "renewal", "charged", "twice", "this", "month", "kind",
    "regards", "hello", "team", "again", "urgent",
];

fn pad_with_prose(raw: &mut String, size: usize, seed: u64) {
    let mut rng = SplitMix::new(seed);
    let mut line = 0;
    loop {
        let word = WORDS[rng.below(WORDS.len() as u64) as usize];
        // Room for the word, its separator and the final line break.
        if raw.len() + word.len() + 3 > size {
            break;
        }
        if line > 0 {
            raw.push(' ');
        }
        raw.push_str(word);
        line += word.len() + 1;
        if line > 70 {
            raw.push_str("\r\n");
            line = 0;
        }
    }
    if line > 0 {
        raw.push_str("\r\n");
    }
}

pub(crate) fn new_message(mix: &Mix, n: u64, channel: &str, customer: u64) -> SampleRecord {
    let record = match channel {
        "sms" => sms(mix, n, customer),
        "messenger" => messenger(mix, n, customer, None),
        _ => email("support@acme.example", &format!("evt-{}", id(mix, n)), &raw_email(mix, n, customer, "")),
    };
    keyed(record, mix, customer)
}

/// A reply by `customer` to message `to` on `channel`. SMS has no
/// references: the reply is the pair's next message.
pub(crate) fn reply(mix: &Mix, n: u64, channel: &str, customer: u64, to: u64) -> SampleRecord {
    let record = match channel {
        "sms" => sms(mix, n, customer),
        "messenger" => messenger(mix, n, customer, Some(to)),
        _ => {
            let refs = format!("In-Reply-To: <lg{}-{to}@load.example>\r\n", mix.seed);
            email("support@acme.example", &format!("evt-{}", id(mix, n)), &raw_email(mix, n, customer, &refs))
        }
    };
    keyed(record, mix, customer)
}

/// Copy number `copy` of email `of`, as another inbox received it.
pub(crate) fn sibling(mix: &Mix, n: u64, of: u64, customer: u64, copy: u32) -> SampleRecord {
    let inbox = format!("inbox{copy}@acme.example");
    let record = email(&inbox, &format!("evt-{}-copy-{n}", id(mix, of)), &raw_email(mix, of, customer, ""));
    keyed(record, mix, customer)
}

pub(crate) fn automatic(mix: &Mix, n: u64, customer: u64) -> SampleRecord {
    let raw = raw_email(mix, n, customer, "Auto-Submitted: auto-replied\r\n");
    keyed(email("support@acme.example", &format!("evt-{}", id(mix, n)), &raw), mix, customer)
}

/// In turn: not a CloudEvent, invalid JSON, an unknown type.
pub(crate) fn malformed(mix: &Mix, n: u64) -> SampleRecord {
    let id = id(mix, n);
    match n % 3 {
        0 => SampleRecord { channel: "sms", key: None, value: format!("garbage {id}").into_bytes(), headers: vec![] },
        1 => binary("sms", "sms.received", &format!("evt-{id}"), "application/json", &[], b"{\"results\": ["),
        _ => binary("sms", "fax.received", &format!("evt-{id}"), "application/json", &[], b"{}"),
    }
}
