//! Postgres limits the worker sizes itself by.

use super::{Store, StoreError};

/// Postgres's shared lock table: it holds `locks_per_transaction ×
/// connections` locks, advisory ones included, for all sessions together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockTable {
    /// `max_locks_per_transaction`.
    pub locks_per_transaction: u64,
    /// `max_connections + max_prepared_transactions`.
    pub connections: u64,
}

impl LockTable {
    pub fn capacity(&self) -> u64 {
        self.locks_per_transaction * self.connections
    }
}

impl Store {
    /// Reads the lock table's size from the server's settings.
    pub async fn lock_table(&self) -> Result<LockTable, StoreError> {
        let (locks, connections): (i64, i64) = sqlx::query_as(
            "SELECT current_setting('max_locks_per_transaction')::bigint,
                    current_setting('max_connections')::bigint + current_setting('max_prepared_transactions')::bigint",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(LockTable { locks_per_transaction: locks.max(0) as u64, connections: connections.max(0) as u64 })
    }
}
