//! The states a partition goes through on this member, and the read-only
//! view of them that health checks and metrics may read.
//!
//! ```text
//!   first record ──▶ Assigned ◀──────▶ Paused        (buffer full / drained)
//!                       │  ▲              │
//!         task panicked │  └─ Restarting ◀┘          (seek to last stored offset)
//!                       ▼
//!                    Draining ──▶ Revoked             (rebalance or stop)
//! ```

/// Where a partition is in its life on this member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Records flow from the consumer to the partition's task.
    Assigned,
    /// The buffer is full: the partition is paused on the consumer until its
    /// task has drained it to half. Other partitions keep flowing.
    Paused,
    /// The task failed (panicked); it was restarted from the last stored
    /// offset and waits out a backoff before placing again.
    Restarting,
    /// Being given away (rebalance) or stopped (shutdown): no new records;
    /// the in-flight batch finishes or is abandoned at the deadline.
    Draining,
    /// Given away; its task has ended.
    Revoked,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Assigned => "assigned",
            Lifecycle::Paused => "paused",
            Lifecycle::Restarting => "restarting",
            Lifecycle::Draining => "draining",
            Lifecycle::Revoked => "revoked",
        }
    }
}

/// One partition as this member sees it, at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    pub topic: String,
    pub partition: i32,
    pub state: Lifecycle,
    /// Records held (queued plus the batch being placed).
    pub buffered_records: usize,
    /// Bytes held (queued plus the batch being placed).
    pub buffered_bytes: usize,
    /// Of those, the batch being placed now.
    pub in_flight_records: usize,
    pub in_flight_bytes: usize,
    /// Everything before this offset is placed and stored for commit.
    pub done_up_to: Option<i64>,
    /// How often the partition's task was restarted after a failure.
    pub restarts: u32,
}
