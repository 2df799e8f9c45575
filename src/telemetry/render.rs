//! The Prometheus text exposition format (version 0.0.4): `# HELP` and
//! `# TYPE` per family, then one line per series. Counters end in `_total`,
//! durations are in seconds, sizes in bytes, as Prometheus' naming guide asks.

use super::Telemetry;
use crate::dead_letter::DlqReason;
use crate::failure::Infra;
use crate::placement::Rule;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// Every rule label, so a dashboard sees zeros rather than missing series.
const RULES: [Rule; 8] = [
    Rule::Duplicate,
    Rule::ReplyOngoing,
    Rule::ReplyClosedAppended,
    Rule::ReplyClosedFollowUp,
    Rule::ReplyClosedAutomatic,
    Rule::SamePair,
    Rule::New,
    Rule::NewFollowUp,
];

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A family of one series without labels.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn labelled<K: AsRef<str>>(out: &mut String, name: &str, label: &str, values: &BTreeMap<K, u64>) {
    for (k, v) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {v}", escape(k.as_ref()));
    }
}

pub(super) fn render(t: &Telemetry) -> String {
    let s = t.stats.snapshot();
    let mut out = String::with_capacity(8 * 1024);

    family(&mut out, "switchboard_records_total", "counter", "Records finished, by outcome.");
    for (outcome, n) in [
        ("applied", s.records_applied),
        ("duplicate", s.records_duplicate),
        ("skipped", s.records_skipped),
        ("dead_lettered", s.records_dead_lettered),
    ] {
        let _ = writeln!(out, "switchboard_records_total{{outcome=\"{outcome}\"}} {n}");
    }

    family(&mut out, "switchboard_messages_placed_total", "counter", "Messages placed, by decision-table rule.");
    let mut rules: BTreeMap<&'static str, u64> = RULES.iter().map(|r| (r.as_str(), 0)).collect();
    rules.extend(s.messages_by_rule.iter().map(|(k, v)| (*k, *v)));
    labelled(&mut out, "switchboard_messages_placed_total", "rule", &rules);

    single(
        &mut out,
        "switchboard_reopens_total",
        "counter",
        "Conversations set back to open by a customer message (R5).",
        s.reopens,
    );
    family(
        &mut out,
        "switchboard_links_made_total",
        "counter",
        "Conversation links inserted, by kind: sibling (R7), related (R1r), follow_up (R2, R4).",
    );
    labelled(&mut out, "switchboard_links_made_total", "kind", &s.links_made);
    let follow_ups = rules[Rule::ReplyClosedFollowUp.as_str()] + rules[Rule::NewFollowUp.as_str()];
    single(
        &mut out,
        "switchboard_follow_ups_started_total",
        "counter",
        "Follow-up conversations started (R2, R4).",
        follow_ups,
    );

    family(&mut out, "switchboard_dead_letters_total", "counter", "Records dead-lettered, by reason code.");
    let mut reasons: BTreeMap<&'static str, u64> = DlqReason::ALL.iter().map(|r| (r.code(), 0)).collect();
    reasons.extend(s.dead_letters_by_reason.iter().map(|(k, v)| (*k, *v)));
    labelled(&mut out, "switchboard_dead_letters_total", "reason", &reasons);

    family(&mut out, "switchboard_skipped_entries_total", "counter", "Messenger entries skipped, by kind.");
    labelled(&mut out, "switchboard_skipped_entries_total", "kind", &s.skipped_entries);

    family(&mut out, "switchboard_retries_total", "counter", "Transient failures waited out, by cause.");
    let mut causes: BTreeMap<&'static str, u64> = [("postgres", 0), ("dead_letter_publish", 0)].into();
    causes.extend(s.retries_by_cause.iter().map(|(k, v)| (*k, *v)));
    labelled(&mut out, "switchboard_retries_total", "cause", &causes);

    single(
        &mut out,
        "switchboard_sender_policy_refusals_total",
        "counter",
        "Email replies whose sender the policy (threading.reply_senders) refused to join the conversation they referenced.",
        s.sender_refusals,
    );
    single(
        &mut out,
        "switchboard_late_parent_merges_total",
        "counter",
        "Conversations started for replies that came before their parent, merged into the parent's conversation (R8).",
        s.late_parent_merges,
    );

    family(
        &mut out,
        "switchboard_failures_total",
        "counter",
        "Failed attempts that were not the infrastructure's, by class: retry (cause unknown), isolate (the data), panic.",
    );
    let mut classes: BTreeMap<&'static str, u64> = [("retry", 0), ("isolate", 0), ("panic", 0)].into();
    classes.extend(s.failures_by_class.iter().map(|(k, v)| (*k, *v)));
    labelled(&mut out, "switchboard_failures_total", "class", &classes);
    single(
        &mut out,
        "switchboard_batch_splits_total",
        "counter",
        "Failing batches split in two to isolate the record that causes the failure.",
        s.batch_splits,
    );
    single(
        &mut out,
        "switchboard_dead_letters_truncated_total",
        "counter",
        "Dead letters the broker refused for their size, replaced by truncated ones (dlq_truncated: true).",
        s.dead_letters_truncated,
    );
    family(
        &mut out,
        "switchboard_waiting_partitions",
        "gauge",
        "Partitions (and the consumer itself) waiting out an infrastructure failure now, by cause.",
    );
    let mut waiting: BTreeMap<&'static str, u64> = Infra::ALL.iter().map(|c| (c.label(), 0)).collect();
    for (_, cause, _) in t.stats.waits() {
        *waiting.entry(cause.label()).or_default() += 1;
    }
    labelled(&mut out, "switchboard_waiting_partitions", "cause", &waiting);

    family(
        &mut out,
        "switchboard_shared_transactions_total",
        "counter",
        "Transactions that placed the batches of several partitions ready at once, by outcome: committed, or fell_back (each batch then placed alone).",
    );
    labelled(&mut out, "switchboard_shared_transactions_total", "outcome", &s.shared_transactions);
    single(
        &mut out,
        "switchboard_shared_transaction_batches_total",
        "counter",
        "Partition batches committed in shared transactions.",
        s.shared_batches,
    );
    single(
        &mut out,
        "switchboard_shared_waiting_batches",
        "gauge",
        "Partition batches waiting for a shared transaction to take them.",
        s.shared_waiting,
    );

    t.batch_records.render(&mut out, "switchboard_batch_records", "Records per batch.");
    t.batch_commit_seconds.render(
        &mut out,
        "switchboard_batch_commit_seconds",
        "From a batch's start to its records being durable (placed or dead-lettered).",
    );
    t.end_to_end_seconds.render(
        &mut out,
        "switchboard_end_to_end_latency_seconds",
        "From a record's Kafka timestamp to its batch being durable.",
    );
    t.worker_seconds.render(
        &mut out,
        "switchboard_worker_latency_seconds",
        "From the worker taking a record from librdkafka to its batch being durable: the worker's share of the end-to-end latency.",
    );
    t.end_to_end_by_topic.render(
        &mut out,
        "switchboard_end_to_end_latency_by_topic_seconds",
        "switchboard_end_to_end_latency_seconds by input topic.",
    );
    t.worker_by_topic.render(
        &mut out,
        "switchboard_worker_latency_by_topic_seconds",
        "switchboard_worker_latency_seconds by input topic.",
    );
    t.worker_by_stage.render(
        &mut out,
        "switchboard_worker_latency_by_stage_seconds",
        "A record's share of switchboard_worker_latency_seconds by stage: buffered (its partition's previous batch still being placed), lane (waiting for a shared transaction), placing (decode, transaction, dead letters). A record's three add up to its worker latency.",
    );

    t.event_publish_seconds.render(
        &mut out,
        "switchboard_event_publish_seconds",
        "From an event's batch commit (its outbox row) to the broker's acknowledgement.",
    );
    family(
        &mut out,
        "switchboard_events_published_total",
        "counter",
        "Conversation events the broker acknowledged, by type.",
    );
    let mut types: BTreeMap<&'static str, u64> =
        crate::events::EventType::ALL.iter().map(|t| (t.as_str(), 0)).collect();
    types.extend(s.events_published.iter().map(|(k, v)| (*k, *v)));
    labelled(&mut out, "switchboard_events_published_total", "type", &types);
    if let Ok(o) = t.outbox.lock() {
        single(
            &mut out,
            "switchboard_outbox_rows",
            "gauge",
            "Events written and not yet acknowledged by the broker.",
            o.rows,
        );
        family(
            &mut out,
            "switchboard_outbox_oldest_seconds",
            "gauge",
            "How long the oldest unpublished event has waited.",
        );
        let _ = writeln!(out, "switchboard_outbox_oldest_seconds {:.3}", o.oldest_secs);
    }

    for (name, kind, help, value) in [
        ("switchboard_in_flight_records", "gauge", "Records consumed and not yet durable.", &t.in_flight_records),
        ("switchboard_in_flight_bytes", "gauge", "Value bytes of the records in flight.", &t.in_flight_bytes),
        ("switchboard_paused_partitions", "gauge", "Partitions paused by flow control.", &t.paused_partitions),
    ] {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed).max(0));
    }

    render_partitions(t, &mut out);
    out
}

/// Reads one per-partition gauge.
type PartitionValue = fn(&super::state::PartitionState) -> Option<i64>;

fn render_partitions(t: &Telemetry, out: &mut String) {
    let Ok(map) = t.partitions.lock() else { return };
    family(out, "switchboard_records_consumed_total", "counter", "Records consumed, by topic and partition.");
    for ((topic, partition), p) in map.iter() {
        let _ = writeln!(
            out,
            "switchboard_records_consumed_total{{topic=\"{}\",partition=\"{partition}\"}} {}",
            escape(topic),
            p.consumed
        );
    }
    family(out, "switchboard_assigned_partitions", "gauge", "Partitions assigned to this member.");
    let _ = writeln!(out, "switchboard_assigned_partitions {}", map.values().filter(|p| p.assigned).count());
    let per_partition: [(&str, &str, PartitionValue); 3] = [
        (
            "switchboard_consumer_lag_records",
            "High watermark minus the group's committed offset, per assigned partition.",
            |p| p.lag(),
        ),
        ("switchboard_partition_high_watermark", "The partition's high watermark.", |p| p.high_watermark),
        ("switchboard_partition_committed_offset", "The group's committed offset.", |p| p.committed),
    ];
    for (name, help, value) in per_partition {
        family(out, name, "gauge", help);
        for ((topic, partition), p) in map.iter().filter(|(_, p)| p.assigned) {
            if let Some(v) = value(p) {
                let _ = writeln!(out, "{name}{{topic=\"{}\",partition=\"{partition}\"}} {v}", escape(topic));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{RecordEnd, Stats};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let stats = Arc::new(Stats::default());
        stats.message_placed(Rule::New);
        stats.record_ended(RecordEnd::DeadLettered(DlqReason::UnknownType));
        let t = Telemetry::new(stats, Duration::from_secs(60));
        let key = ("in\"bound".to_owned(), 2);
        t.polled(std::slice::from_ref(&key), &[(key.clone(), Some(10), Some(4))]);
        let text = t.render();
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let parts: Vec<&str> = line.split(' ').collect();
            assert!(text.contains(&format!("# HELP {} ", parts[2])), "{line}");
            if parts[3] == "counter" {
                assert!(parts[2].ends_with("_total"), "{line}");
            }
        }
        assert!(text.contains("switchboard_messages_placed_total{rule=\"r4_new\"} 1\n"));
        assert!(text.contains("switchboard_messages_placed_total{rule=\"r1_reply_ongoing\"} 0\n"));
        assert!(text.contains("switchboard_dead_letters_total{reason=\"unknown_type\"} 1\n"));
        assert!(text.contains("switchboard_consumer_lag_records{topic=\"in\\\"bound\",partition=\"2\"} 6\n"), "{text}");
    }

    #[test]
    fn each_record_is_split_into_three_stages_that_add_up_to_its_share() {
        use std::time::Instant;
        // One series' value, as a scraper reads it.
        let sample = |text: &str, series: &str| -> Option<f64> {
            text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        };
        let t = Telemetry::new(Arc::new(Stats::default()), Duration::from_secs(60));
        let now = Instant::now();
        let ms = Duration::from_millis;
        // Two records handed over 300 and 100 ms ago, taken into a batch
        // 50 ms ago that waited 20 ms for a lane; then one placed alone.
        let record = |offset| crate::test_records::zeros(offset, 10);
        t.batch_done(
            &("t".to_owned(), 0),
            &[record(1), record(2)],
            &[now - ms(300), now - ms(100)],
            now - ms(50),
            Some(ms(20)),
        );
        t.batch_done(&("t".to_owned(), 0), &[record(3)], &[now - ms(40)], now - ms(10), None);
        let text = t.render();
        let stage = |s: &str, what: &str| {
            sample(&text, &format!("switchboard_worker_latency_by_stage_seconds_{what}{{stage=\"{s}\"}}")).unwrap()
        };
        for s in ["buffered", "lane", "placing"] {
            assert_eq!(stage(s, "count"), 3.0, "{s}: every record once");
        }
        // Buffered: 250 + 50 + 30 ms. Lane: 20 ms twice, and zero alone.
        assert!((stage("buffered", "sum") - 0.330).abs() < 1e-9, "{text}");
        assert!((stage("lane", "sum") - 0.040).abs() < 1e-9, "{text}");
        // Placing is the rest of each batch's time: at least 30, 30 and 10 ms.
        assert!(stage("placing", "sum") >= 0.070, "{text}");
        let worker = sample(&text, "switchboard_worker_latency_seconds_sum").unwrap();
        let stages: f64 = ["buffered", "lane", "placing"].iter().map(|s| stage(s, "sum")).sum();
        assert!((worker - stages).abs() < 1e-9, "the stages {stages} s add up to the share {worker} s");
    }
}
