//! `switchboard redrive`: which dead letters go back to their source topic,
//! and as what. Pure; the caller reads the dead-letter topic and publishes.
//!
//! A redriven record is the original key, value and headers (the `dlq_*`
//! headers removed, operator fixes applied) plus `dlq_redrive_count` and
//! `dlq_original_source`. If it fails again, the worker dead-letters it with
//! those two headers kept, so the count grows by one per round; past the
//! limit a record is redriven only with `--force`, so a record that can never
//! succeed does not circle forever.

use super::dead_letters::{Filter, Letter, ORIGINAL_SOURCE, REDRIVE_COUNT};
use crate::dead_letter::headers;
use crate::record::Header;
use std::collections::BTreeMap;

/// What to redrive.
#[derive(Clone, Debug, Default)]
pub struct Choice {
    /// Reasons, source topic, time.
    pub filter: Filter,
    /// Exact `topic/partition/offset` sources (empty: any).
    pub sources: Vec<String>,
    /// Redrive counts at or above this are skipped unless `force`.
    pub limit: u32,
    pub force: bool,
    /// Headers to set on the way (`ce_type=sms.received`): fixes to the
    /// original that make it valid.
    pub set_headers: Vec<(String, String)>,
    /// The input topics; a dead letter from elsewhere is not sent.
    pub input_topics: Vec<String>,
}

/// A record to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redrive {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// The dead letter's `dlq_source`, for the report.
    pub from: String,
    pub reason: String,
    /// The count the record now carries.
    pub redrives: u32,
}

/// A chosen dead letter that is not sent, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub from: String,
    pub why: String,
}

/// The redrives for `letters` under `choice`. Every generation of one record
/// (its first dead letter and those after each failed redrive) counts as one
/// record: only its latest dead letter is considered.
pub fn plan(letters: &[Letter], choice: &Choice) -> (Vec<Redrive>, Vec<Skipped>) {
    let mut latest: BTreeMap<&str, &Letter> = BTreeMap::new();
    for l in letters {
        let slot = latest.entry(l.original_source()).or_insert(l);
        if (l.redrives, l.at) > (slot.redrives, slot.at) {
            *slot = l;
        }
    }
    let mut sends = Vec::new();
    let mut skipped = Vec::new();
    for l in latest.values() {
        let wanted = choice.filter.keeps(l)
            && (choice.sources.is_empty() || choice.sources.iter().any(|s| *s == l.source || s == l.original_source()));
        if !wanted {
            continue;
        }
        let topic = l.source_topic();
        if !choice.input_topics.iter().any(|t| t == topic) {
            skipped.push(Skipped { from: l.source.clone(), why: format!("{topic:?} is not an input topic") });
            continue;
        }
        // A truncated dead letter holds only the first bytes of the record:
        // sent back, it could decode as a shorter email and take the real
        // one's Message-ID for good (R0). Not even --force sends it.
        let truncated = l.record.headers.iter().any(|h| h.key == headers::TRUNCATED);
        if truncated {
            skipped.push(Skipped {
                from: l.source.clone(),
                why: format!(
                    "truncated (the dead-letter topic refused the whole record); replay the original from {} instead",
                    l.original_source()
                ),
            });
            continue;
        }
        if l.redrives >= choice.limit && !choice.force {
            skipped.push(Skipped {
                from: l.source.clone(),
                why: format!("already redriven {} times (limit {}; --force to send anyway)", l.redrives, choice.limit),
            });
            continue;
        }
        sends.push(Redrive {
            topic: topic.to_owned(),
            key: l.record.key.clone(),
            value: l.record.value.clone(),
            headers: redriven_headers(l, &choice.set_headers),
            from: l.source.clone(),
            reason: l.reason.clone(),
            redrives: l.redrives + 1,
        });
    }
    (sends, skipped)
}

fn redriven_headers(l: &Letter, set: &[(String, String)]) -> Vec<Header> {
    let ours = [REDRIVE_COUNT, ORIGINAL_SOURCE];
    let mut out: Vec<Header> = l
        .record
        .headers
        .iter()
        .filter(|h| !headers::ALL.contains(&h.key.as_str()) && !ours.contains(&h.key.as_str()))
        .filter(|h| !set.iter().any(|(k, _)| k.eq_ignore_ascii_case(&h.key)))
        .cloned()
        .collect();
    let mut add = |k: &str, v: &str| out.push(Header { key: k.to_owned(), value: Some(v.as_bytes().to_vec()) });
    for (k, v) in set {
        add(k, v);
    }
    add(ORIGINAL_SOURCE, l.original_source());
    add(REDRIVE_COUNT, &(l.redrives + 1).to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::dead_letters::tests::letter;

    fn choice() -> Choice {
        Choice { limit: 3, input_topics: vec!["inbound.sms".into()], ..Choice::default() }
    }

    #[test]
    fn a_redrive_keeps_the_original_drops_dlq_headers_and_counts() {
        let l = letter("unknown_type", "inbound.sms/0/5", "2026-11-25T10:00:00Z", None);
        let set = vec![("CE_TYPE".to_owned(), "sms.received".to_owned())];
        let (sends, skipped) = plan(std::slice::from_ref(&l), &Choice { set_headers: set, ..choice() });
        assert!(skipped.is_empty());
        let r = &sends[0];
        assert_eq!((r.topic.as_str(), r.redrives), ("inbound.sms", 1));
        assert_eq!(r.value.as_deref(), Some(&b"payload"[..]));
        let keys: Vec<&str> = r.headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["CE_TYPE", ORIGINAL_SOURCE, REDRIVE_COUNT]);
        assert_eq!(r.headers[1].value.as_deref(), Some(&b"inbound.sms/0/5"[..]));
    }

    #[test]
    fn past_the_limit_only_force_sends_and_only_the_latest_generation_counts() {
        let first = letter("bad_payload", "inbound.sms/0/5", "2026-11-25T10:00:00Z", None);
        let mut third = letter("bad_payload", "inbound.sms/0/9", "2026-11-25T11:00:00Z", Some("3"));
        third.record.headers.push(Header { key: ORIGINAL_SOURCE.into(), value: Some(b"inbound.sms/0/5".to_vec()) });
        let letters = [first, third];
        let (sends, skipped) = plan(&letters, &choice());
        assert!(sends.is_empty());
        assert_eq!(skipped.len(), 1, "one record, however many generations");
        assert!(skipped[0].why.contains("already redriven 3 times"));
        let (sends, _) = plan(&letters, &Choice { force: true, ..choice() });
        assert_eq!(sends[0].redrives, 4);
    }

    #[test]
    fn a_truncated_dead_letter_is_never_sent_back_not_even_with_force() {
        let mut l = letter("bad_payload", "inbound.sms/0/5", "2026-11-25T10:00:00Z", None);
        l.record.headers.push(Header { key: headers::TRUNCATED.into(), value: Some(b"true".to_vec()) });
        let (sends, skipped) = plan(std::slice::from_ref(&l), &Choice { force: true, ..choice() });
        assert!(sends.is_empty());
        assert!(skipped[0].why.contains("replay the original from inbound.sms/0/5"), "{}", skipped[0].why);
    }

    #[test]
    fn choices_by_source_and_foreign_topics() {
        let a = letter("bad_payload", "inbound.sms/0/5", "2026-11-25T10:00:00Z", None);
        let b = letter("bad_payload", "inbound.sms/1/6", "2026-11-25T10:00:00Z", None);
        let c = letter("bad_payload", "elsewhere/0/1", "2026-11-25T10:00:00Z", None);
        let (sends, skipped) = plan(&[a.clone(), b.clone(), c.clone()], &choice());
        assert_eq!((sends.len(), skipped.len()), (2, 1));
        let only = Choice { sources: vec!["inbound.sms/1/6".into()], ..choice() };
        let (sends, _) = plan(&[a, b, c], &only);
        assert_eq!(sends.iter().map(|s| s.from.as_str()).collect::<Vec<_>>(), ["inbound.sms/1/6"]);
    }
}
