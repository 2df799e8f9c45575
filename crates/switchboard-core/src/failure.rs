//! The failure policy, written once: every failure the worker meets
//! (a Postgres error, a pool or connection error, a broker error, a panic)
//! is classified here, where it is first seen, into one of three verdicts.
//! Nothing else decides whether to retry.
//!
//! - [`Verdict::Wait`]: the infrastructure is down or refuses us (Postgres
//!   or the broker unreachable, a failover, an admin shutdown, a deadlock,
//!   a credential, grant or ACL the operator must fix). Retrying the same
//!   work later is right and waiting loses nothing, so it is retried
//!   without end: the partition waits and `/readyz` says why.
//! - [`Verdict::Retry`]: not known to be the infrastructure's, and not known
//!   to be the input's either (a panic, a race, an error nobody foresaw,
//!   `out of shared memory`). Retried a bounded number of times, then the
//!   work is isolated: split until the record that causes it is found.
//! - [`Verdict::Isolate`]: the data itself is refused (invalid text, a value
//!   too large for an index); a retry of the same data cannot help.
//!
//! Why a middle class at all: an error the table does not know used to be
//! treated as transient ("waiting loses nothing"), and one email whose
//! references exhausted Postgres's lock table held its partition forever.
//! A bounded retry still rides out a passing fault, and a record that fails
//! every time ends as a dead letter instead of a stall.
//!
//! The verdicts and Postgres's SQLSTATE classes live here, in the pure core;
//! each edge reads its own client's errors into them where they are first
//! seen (`switchboard_store::of_postgres` for sqlx's, `switchboard_kafka::of_kafka`
//! for rdkafka's), so no crate but those two names a client's error type.
//! The table of classes is in `docs/reliability.md`.

use std::fmt;

/// What to do about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The infrastructure's: retry without end; the partition waits.
    Wait(Infra),
    /// Unknown cause: retry a bounded number of times, then isolate.
    Retry,
    /// The input's: isolate at once.
    Isolate,
}

impl Verdict {
    /// A stable label for metrics: the infrastructure cause, or `retry`,
    /// `isolate`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Wait(infra) => infra.label(),
            Verdict::Retry => "retry",
            Verdict::Isolate => "isolate",
        }
    }
}

/// Why the infrastructure cannot take the work now. A closed set: these are
/// metric labels and `/readyz` sentences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Infra {
    /// Postgres or the broker cannot be reached (connection refused or
    /// lost, timeouts, brokers down).
    Unreachable,
    /// Postgres is shutting down, starting, failing over or read-only.
    Failover,
    /// Another transaction is in the way: deadlock, serialization failure,
    /// a lock held past the lock timeout (an agent's open transaction).
    Contention,
    /// A shared resource is exhausted for everyone: no pool connection in
    /// time, too many connections, a full disk.
    Exhausted,
    /// The credentials, a certificate, a grant or an ACL is missing or
    /// refused: the operator's to fix.
    Refused,
    /// The schema is behind the worker (a table or column it needs is
    /// missing): `switchboard migrate` has not run yet.
    Schema,
    /// The dead-letter topic refuses even a minimal dead letter: the
    /// operator's to fix (its `max.message.bytes`, its ACL).
    DeadLetterTopic,
}

impl Infra {
    /// Every cause, for metrics that show zeros.
    pub const ALL: [Infra; 7] = [
        Infra::Unreachable,
        Infra::Failover,
        Infra::Contention,
        Infra::Exhausted,
        Infra::Refused,
        Infra::Schema,
        Infra::DeadLetterTopic,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Infra::Unreachable => "unreachable",
            Infra::Failover => "failover",
            Infra::Contention => "contention",
            Infra::Exhausted => "exhausted",
            Infra::Refused => "refused",
            Infra::Schema => "schema",
            Infra::DeadLetterTopic => "dead_letter_topic",
        }
    }

    /// What an operator reads in `/readyz` and the logs.
    pub fn sentence(self) -> &'static str {
        match self {
            Infra::Unreachable => "a service cannot be reached; waiting for it",
            Infra::Failover => "Postgres is shutting down, failing over or read-only; waiting for a writable primary",
            Infra::Contention => "another transaction holds what this batch needs; waiting for it",
            Infra::Exhausted => "a shared resource is exhausted (connections, disk); waiting for room",
            Infra::Refused => {
                "a credential, certificate, grant or ACL is missing or refused; the operator must fix it (see docs/operations.md)"
            }
            Infra::Schema => {
                "the database schema and the worker disagree: run `switchboard migrate` if the schema is older, upgrade the worker if it is newer"
            }
            Infra::DeadLetterTopic => {
                "the dead-letter topic refuses even a minimal dead letter; check its max.message.bytes and ACL"
            }
        }
    }
}

impl fmt::Display for Infra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Classifies a Postgres SQLSTATE (Appendix A of the Postgres manual).
pub fn of_sqlstate(code: &str) -> Verdict {
    let class = code.get(..2).unwrap_or("");
    match (class, code) {
        // connection_exception; system_error (I/O errors on the server).
        ("08" | "58", _) => Verdict::Wait(Infra::Unreachable),
        // serialization_failure, deadlock_detected.
        (_, "40001" | "40P01") => Verdict::Wait(Infra::Contention),
        // lock_not_available (lock_timeout), object_in_use; query_canceled,
        // which a statement_timeout set on the role or database raises for
        // a batch blocked behind an agent's open transaction, as 55P03.
        (_, "55P03" | "55006" | "57014") => Verdict::Wait(Infra::Contention),
        // admin_shutdown, crash_shutdown, cannot_connect_now; read-only
        // transaction (a standby, or a primary demoted in a failover).
        (_, "57P01" | "57P02" | "57P03" | "25006") => Verdict::Wait(Infra::Failover),
        // invalid_authorization_specification, invalid_password;
        // insufficient_privilege (a grant); the database does not exist; a
        // prepared statement the server does not know or knows twice (a
        // pooler in transaction mode in front of Postgres).
        ("28", _) | (_, "42501" | "3D000" | "26000" | "42P05") => Verdict::Wait(Infra::Refused),
        // Class 42 (syntax error or access rule violation: an undefined
        // table, column, function or object, an ON CONFLICT with no unique
        // index to match, a type mismatch) and invalid_schema_name: the
        // statements and the schema disagree, a worker newer (or older)
        // than the migrations. Parameters never change a statement's
        // syntax or types, so no record causes these, and dead-lettering
        // everything read during a rolling upgrade would be far worse.
        ("42", _) | (_, "3F000") => Verdict::Wait(Infra::Schema),
        // disk_full, too_many_connections.
        (_, "53100" | "53300") => Verdict::Wait(Infra::Exhausted),
        // data_exception (invalid text, a NUL byte, out-of-range values) and
        // program_limit_exceeded (a value too large for an index row, too
        // many columns or arguments): properties of the data.
        ("22" | "54", _) => Verdict::Isolate,
        // Everything else, including out_of_memory (53200, "out of shared
        // memory" when a batch takes more locks than the lock table holds:
        // records cause it, and other clients suffer while it is retried),
        // configuration_limit_exceeded (53400, temp_file_limit: a batch
        // too large), integrity violations (a race a retry re-reads),
        // internal errors.
        _ => Verdict::Retry,
    }
}

/// What a failed publish calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishVerdict {
    /// As for any failure.
    Is(Verdict),
    /// The broker refuses this record for its size or form: it never
    /// takes it, so the record is replaced by a smaller one.
    TooLarge,
}

/// A panic's message, for logs and `dlq_detail`.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The innermost message of an error chain: the service's own words.
pub fn root_cause(e: &dyn std::error::Error) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests;
