use super::*;
use std::collections::{BTreeMap, HashSet};
use switchboard::decode::decode;
use switchboard::record::SourceRecord;

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

fn mixed() -> Mix {
    Mix {
        customers: 50,
        seed: 7,
        channels: (70, 20, 10),
        duplicates: 0.10,
        siblings: 0.05,
        replies: 0.10,
        automatic: 0.05,
        malformed: 0.02,
        email_bytes: 2_000,
        ..Mix::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_records_and_another_seed_new_ones() {
    let (mut a, mut b) = (Generator::new(mixed()), Generator::new(mixed()));
    let mut c = Generator::new(Mix { seed: 8, ..mixed() });
    let mut differ = 0;
    for _ in 0..2_000 {
        let (x, y, z) = (a.next_record(), b.next_record(), c.next_record());
        assert_eq!(x, y);
        differ += usize::from(x.1 != z.1);
    }
    assert!(differ > 1_900, "another seed, other records ({differ})");
}

#[test]
fn the_shares_of_kinds_and_channels_are_respected() {
    let mut g = Generator::new(mixed());
    let total = 20_000;
    let mut kinds: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut channels: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..total {
        let (kind, record) = g.next_record();
        *kinds.entry(kind).or_default() += 1;
        if kind == Kind::New {
            *channels.entry(record.channel).or_default() += 1;
        }
    }
    let share = |k: Kind| kinds.get(&k).copied().unwrap_or(0) as f64 / total as f64;
    for (kind, want) in [
        (Kind::Duplicate, 0.10),
        (Kind::Sibling, 0.05),
        (Kind::Reply, 0.10),
        (Kind::Automatic, 0.05),
        (Kind::Malformed, 0.02),
        (Kind::New, 0.68),
    ] {
        assert!((share(kind) - want).abs() < 0.01, "{kind:?}: {} vs {want}", share(kind));
    }
    let new = kinds[&Kind::New] as f64;
    for (channel, want) in [("sms", 0.7), ("messenger", 0.2), ("email", 0.1)] {
        let got = channels[channel] as f64 / new;
        assert!((got - want).abs() < 0.02, "{channel}: {got} vs {want}");
    }
}

#[test]
fn every_record_but_the_malformed_decodes_and_only_repeats_share_an_id() {
    let mut g = Generator::new(mixed());
    let mut ids = HashSet::new();
    for n in 0..3_000 {
        let (kind, record) = g.next_record();
        let decoded = decode(&as_record(&record, n), 1 << 20);
        match kind {
            Kind::Malformed => assert!(decoded.is_err()),
            _ => {
                let decoded = decoded.unwrap_or_else(|e| panic!("{kind:?} decodes: {}", e.detail));
                let m = &decoded.messages[0];
                let fresh = ids.insert((m.endpoint.to_string(), m.external_id.to_string()));
                assert_eq!(fresh, kind != Kind::Duplicate, "{kind:?}");
                if kind == Kind::Automatic {
                    assert!(m.auto_generated);
                }
            }
        }
    }
}

#[test]
fn emails_are_padded_to_the_asked_size_and_mixes_parse() {
    let mix = Mix { channels: (0, 0, 1), email_bytes: 10_000, ..Mix::default() };
    let (_, record) = Generator::new(mix).next_record();
    assert!((9_900..=10_000).contains(&record.value.len()), "{}", record.value.len());
    // Prose, not one line repeated: nearly every line of the body differs,
    // so the broker and Postgres compress it about as much as real mail.
    let text = String::from_utf8_lossy(&record.value);
    let lines: Vec<&str> = text.lines().filter(|l| l.len() > 40).collect();
    let distinct: std::collections::HashSet<&&str> = lines.iter().collect();
    assert!(
        lines.len() > 100 && distinct.len() * 10 >= lines.len() * 9,
        "{} lines, {} distinct",
        lines.len(),
        distinct.len()
    );
    assert_eq!(Mix::parse_channels("sms=70, messenger=20,email=10"), Ok((70, 20, 10)));
    assert!(Mix::parse_channels("fax=1").is_err());
    assert!(Mix { duplicates: 0.7, replies: 0.5, ..Mix::default() }.validate().is_err());
}
