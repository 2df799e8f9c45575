//! The lock budget: how many records a batch may hold so that the pool's
//! batches, all at once, never exhaust Postgres's shared lock table.
//!
//! Each message takes three advisory locks (its identity, its pair and, for
//! email, its Message-ID), plus one for each id it references that is not
//! stored yet, held until the transaction commits. With `pool` connections
//! each running a transaction, they must fit in the lock table with room
//! left for the agent desktop and every other session. The worker claims at
//! most half of the table: batches are cut to fit at three locks a record,
//! and a batch (or a record carrying many messages) that needs more is
//! placed in several transactions, each within its share ([`transactions`]).

/// Locks one record's messages take, at most, for one-message records.
pub(super) const LOCKS_PER_RECORD: u64 = 3;

/// The batch size (records) that fits the budget, and what to set
/// `max_locks_per_transaction` to for the configured size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Budget {
    pub batch_records: usize,
    /// Locks one transaction may take: its share of half the table. A
    /// batch whose records take more (emails naming many unknown ids) is
    /// placed in several transactions ([`crate::store::locks_needed`]).
    pub locks_per_batch: u64,
    /// `max_locks_per_transaction` that would allow the configured size.
    pub locks_per_transaction_needed: u64,
}

/// Postgres's default lock table: `max_locks_per_transaction` 64 ×
/// (`max_connections` 100 + `max_prepared_transactions` 0), assumed while
/// Postgres cannot be asked.
pub(super) const DEFAULT_LOCK_TABLE: u64 = 6_400;

/// Sizes batches for a lock table of `capacity` locks, a pool of `pool`
/// connections, and Postgres's `connections` (max_connections +
/// max_prepared_transactions), given the configured `batch_records`.
pub(super) fn size(capacity: u64, pool: u64, connections: u64, batch_records: usize) -> Budget {
    let share = capacity / 2;
    let per_batch = share / pool.max(1);
    let fitting = (per_batch / LOCKS_PER_RECORD).max(1) as usize;
    let wanted = 2 * pool * LOCKS_PER_RECORD * batch_records as u64;
    Budget {
        batch_records: batch_records.min(fitting),
        locks_per_batch: per_batch.max(LOCKS_PER_RECORD),
        locks_per_transaction_needed: wanted.div_ceil(connections.max(1)),
    }
}

/// Consecutive runs of records, record `n` needing `needs[n]` advisory
/// locks, that need at most `budget` together (a record that alone needs
/// more is a run of its own): the transactions a batch is placed in. A
/// batch within the budget, the common case, is one run.
pub(super) fn transactions(needs: &[u64], budget: u64) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut locks) = (0, 0);
    for (n, needed) in needs.iter().enumerate() {
        if n > start && locks + needed > budget {
            groups.push(start..n);
            (start, locks) = (n, 0);
        }
        locks += needed;
    }
    if start < needs.len() || groups.is_empty() {
        groups.push(start..needs.len());
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_defaults_and_the_default_pool_cut_email_batches() {
        // max_locks_per_transaction 64 × max_connections 100: 6,400 locks.
        let b = size(6_400, 16, 100, 500);
        assert_eq!(b.batch_records, 66, "16 batches × 66 × 3 = 3,168 locks, half the table");
        assert!(16 * 3 * b.batch_records as u64 <= 3_200);
        assert_eq!(b.locks_per_transaction_needed, 480);
        assert_eq!(b.locks_per_batch, 200, "half the table shared by 16 connections");
    }

    #[test]
    fn a_large_enough_table_leaves_the_configured_size() {
        assert_eq!(size(1_000_000, 16, 100, 500).batch_records, 500);
    }

    #[test]
    fn a_tiny_table_still_allows_one_record() {
        assert_eq!(size(10, 16, 100, 500).batch_records, 1);
    }

    #[test]
    fn a_batch_within_the_lock_budget_is_one_transaction() {
        assert_eq!(transactions(&[3; 66], 200), vec![0..66]);
        assert_eq!(transactions(&[], 200), vec![0..0]);
    }

    #[test]
    fn emails_naming_many_ids_are_placed_in_several_transactions_in_order() {
        // 103 locks each: one email naming 100 unknown ids per transaction
        // of 200, with the small records beside them where they fit.
        assert_eq!(transactions(&[103, 103, 3, 103, 3, 3], 200), [0..1, 1..3, 3..6]);
        // One record over the budget still goes, alone.
        assert_eq!(transactions(&[3, 500, 3], 200), [0..1, 1..2, 2..3]);
    }
}
