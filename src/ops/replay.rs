//! `switchboard replay`: moves a stopped group's committed offsets, with the
//! choices of Kafka's `kafka-consumer-groups.sh --reset-offsets`. Consuming
//! again is safe by I4 (a stored message is a duplicate, R0); the point of
//! moving the group's own offsets, rather than starting a new group, is to
//! re-read only the part that matters.

use crate::config::Settings;
use crate::kafka::{GroupOffsets, OffsetsError, PartitionKey};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// Where to move each chosen partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Earliest,
    Latest,
    /// An absolute offset, clamped to the partition's range.
    Offset(i64),
    /// The first record at or after this time; the end when there is none.
    Datetime(DateTime<Utc>),
    /// The current offset plus (or minus) this many, clamped.
    ShiftBy(i64),
}

/// One partition's move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub partition: PartitionKey,
    /// The committed offset; `None` when the group never committed one.
    pub current: Option<i64>,
    pub new: i64,
    /// The partition's earliest offset and end.
    pub low: i64,
    pub high: i64,
}

impl Move {
    /// Records consumed again (positive) or skipped (negative) compared to
    /// where the group would start now (its commit, else the earliest).
    pub(crate) fn reread(&self) -> i64 {
        self.current.unwrap_or(self.low) - self.new
    }
}

/// The new offset of one partition; `for_time` is the broker's answer for a
/// `Datetime` target. Like Kafka's tool, anything outside the partition's
/// range is clamped to it.
pub(crate) fn new_offset(target: Target, current: Option<i64>, low: i64, high: i64, for_time: Option<i64>) -> i64 {
    let wanted = match target {
        Target::Earliest => low,
        Target::Latest => high,
        Target::Offset(o) => o,
        Target::Datetime(_) => for_time.unwrap_or(high),
        Target::ShiftBy(n) => current.unwrap_or(low).saturating_add(n),
    };
    wanted.clamp(low, high.max(low))
}

/// Works out the moves for `topics` (all input topics when empty), limited
/// to `partitions` when given. Reads only.
pub fn plan(
    client: &GroupOffsets,
    settings: &Settings,
    topics: &[String],
    partitions: &[i32],
    target: Target,
) -> Result<Vec<Move>, OffsetsError> {
    let chosen: Vec<&str> = if topics.is_empty() {
        settings.kafka.topics.inputs().to_vec()
    } else {
        topics.iter().map(String::as_str).collect()
    };
    let keys: Vec<PartitionKey> = client
        .partitions(&chosen)?
        .into_iter()
        .filter(|(_, p)| partitions.is_empty() || partitions.contains(p))
        .collect();
    let committed = client.committed(&keys)?;
    let times = match target {
        Target::Datetime(t) => Some(client.offsets_for_time(&keys, t.timestamp_millis())?),
        _ => None,
    };
    let mut moves = Vec::with_capacity(keys.len());
    for key in keys {
        let (low, high) = client.watermarks(&key)?;
        let current = committed.get(&key).copied().flatten();
        let for_time = times.as_ref().and_then(|t| t.get(&key).copied().flatten());
        let new = new_offset(target, current, low, high, for_time);
        moves.push(Move { partition: key, current, new, low, high });
    }
    Ok(moves)
}

/// Commits the moves; refused while the group has live members.
pub fn execute(client: &GroupOffsets, moves: &[Move]) -> Result<(), OffsetsError> {
    let offsets: Vec<(PartitionKey, i64)> = moves.iter().map(|m| (m.partition.clone(), m.new)).collect();
    client.commit(&offsets)
}

/// The table `--dry-run` (and a real run) prints.
pub fn table(group: &str, moves: &[Move]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<28} {:>9} {:>12} {:>12} {:>12}",
        "GROUP", "TOPIC", "PARTITION", "CURRENT", "NEW", "READ AGAIN"
    );
    for m in moves {
        let current = m.current.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let _ = writeln!(
            out,
            "{:<12} {:<28} {:>9} {:>12} {:>12} {:>12}",
            group,
            m.partition.0,
            m.partition.1,
            current,
            m.new,
            m.reread()
        );
    }
    let total: i64 = moves.iter().map(|m| m.reread().max(0)).sum();
    let _ = writeln!(out, "{total} records would be read again.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_clamped_to_the_partition_like_kafkas_tool() {
        assert_eq!(new_offset(Target::Earliest, Some(50), 10, 100, None), 10);
        assert_eq!(new_offset(Target::Latest, Some(50), 10, 100, None), 100);
        assert_eq!(new_offset(Target::Offset(5), Some(50), 10, 100, None), 10);
        assert_eq!(new_offset(Target::Offset(500), Some(50), 10, 100, None), 100);
        assert_eq!(new_offset(Target::Offset(42), Some(50), 10, 100, None), 42);
        assert_eq!(new_offset(Target::ShiftBy(-30), Some(50), 10, 100, None), 20);
        assert_eq!(new_offset(Target::ShiftBy(-300), Some(50), 10, 100, None), 10);
        assert_eq!(new_offset(Target::ShiftBy(5), None, 10, 100, None), 15, "no commit: from the earliest");
    }

    #[test]
    fn a_time_after_the_last_record_means_the_end() {
        let t = Target::Datetime(Utc::now());
        assert_eq!(new_offset(t, Some(3), 0, 9, Some(4)), 4);
        assert_eq!(new_offset(t, Some(3), 0, 9, None), 9);
    }

    #[test]
    fn read_again_counts_from_the_commit_or_the_earliest() {
        let m = Move { partition: ("t".into(), 0), current: Some(50), new: 20, low: 10, high: 100 };
        assert_eq!(m.reread(), 30);
        assert_eq!(Move { current: None, ..m.clone() }.reread(), -10, "never read: the move skips ten");
        assert!(table("g", &[m]).contains("30 records would be read again."));
    }
}
