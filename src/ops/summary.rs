//! The run's counters as a short table for a person (`run --summary
//! table`, used by the demo): records by outcome, messages by rule.

use crate::stats::Snapshot;
use std::fmt::Write as _;

/// What each rule label means, in the contract's words.
fn meaning(rule: &str) -> &'static str {
    match rule {
        "r0_duplicate" => "R0 duplicate, nothing changed",
        "r1_reply_ongoing" => "R1 reply, appended to its conversation",
        "r1r_replies_first" => "R1r parent after its replies, joined their conversation",
        "r2_reply_closed_appended" => "R2 reply to a closed one, appended to the pair's ongoing one",
        "r2_reply_closed_follow_up" => "R2 reply to a closed one, follow-up started",
        "r2_reply_closed_automatic" => "R2 with R6, automatic reply to a closed one",
        "r3_same_pair" => "R3 same customer and inbox, appended",
        "r4_new" => "R4 new conversation",
        "r4_new_follow_up" => "R4 new, follow-up of a recently closed one",
        _ => "",
    }
}

pub fn table(s: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<28} {:>8}  meaning", "messages by rule", "count");
    for (rule, n) in &s.messages_by_rule {
        let _ = writeln!(out, "{rule:<28} {n:>8}  {}", meaning(rule));
    }
    let _ = writeln!(
        out,
        "records: {} ({} applied, {} duplicates, {} skipped, {} dead-lettered); {} retries",
        s.records, s.records_applied, s.records_duplicate, s.records_skipped, s.records_dead_lettered, s.retries
    );
    for (reason, n) in &s.dead_letters_by_reason {
        let _ = writeln!(out, "dead letters {reason:<20} {n:>8}");
    }
    // Always shown, zeros included: an operator reading the table learns
    // these exist before the day they matter.
    let _ = writeln!(
        out,
        "{:<28} {:>8}  replies whose sender may not join the conversation they name, placed apart and linked",
        "sender policy refusals", s.sender_refusals
    );
    let _ = writeln!(
        out,
        "{:<28} {:>8}  conversations of replies that came first, merged into their late parent's",
        "r8 late parent merges", s.late_parent_merges
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_rule_and_the_totals() {
        let mut s = Snapshot { records: 3, records_applied: 2, records_dead_lettered: 1, ..Snapshot::default() };
        s.messages_by_rule.insert("r4_new", 2);
        s.dead_letters_by_reason.insert("bad_payload", 1);
        let t = table(&s);
        assert!(t.contains("r4_new                              2  R4 new conversation"), "{t}");
        assert!(t.contains("records: 3 (2 applied, 0 duplicates, 0 skipped, 1 dead-lettered)"), "{t}");
        assert!(t.contains("dead letters bad_payload"), "{t}");
        assert!(t.contains("sender policy refusals              0  replies whose sender"), "{t}");
        assert!(t.contains("r8 late parent merges               0  conversations of replies"), "{t}");
        s.sender_refusals = 2;
        assert!(table(&s).contains("sender policy refusals              2  replies whose sender"), "{}", table(&s));
        s.late_parent_merges = 3;
        assert!(table(&s).contains("r8 late parent merges               3  conversations of replies"), "{}", table(&s));
    }
}
