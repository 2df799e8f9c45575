//! Reads sqlx's errors into the failure policy's verdicts
//! ([`switchboard_core::failure`]): Postgres's SQLSTATE where there is one,
//! else the kind of client error.

use switchboard_core::failure::{of_sqlstate, Infra, Verdict};

/// CHECK constraints a migration widened. Only the worker's own values can
/// break them (no record chooses an event kind), so a violation means the
/// schema is older than the worker, not that a record is bad.
const WIDENED_CHECKS: [&str; 1] = ["conversation_events_kind_check"];

/// Classifies an error from sqlx: Postgres's SQLSTATE where there is one,
/// else the kind of client error.
pub fn of_postgres(err: &sqlx::Error) -> Verdict {
    match err {
        // A check that an older schema has and a newer one widened: the
        // worker writes what the newest migration allows (an event kind).
        sqlx::Error::Database(db) if db.constraint().is_some_and(|c| WIDENED_CHECKS.contains(&c)) => {
            Verdict::Wait(Infra::Schema)
        }
        sqlx::Error::Database(db) => db.code().map_or(Verdict::Retry, |code| of_sqlstate(&code)),
        // rustls's refusal of the server's certificate comes as an I/O
        // error ("invalid peer certificate: UnknownIssuer"): a CA the
        // operator must fix, not a network that may come back.
        sqlx::Error::Io(io) if io.to_string().contains("invalid peer certificate") => Verdict::Wait(Infra::Refused),
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => Verdict::Wait(Infra::Unreachable),
        // The stream, not a record: a connection cut while it is being
        // opened reads as a protocol error (sqlx takes the EOF that answers
        // its SSL request for a 0x00 byte), and so do a proxy or pooler
        // speaking the protocol wrongly. Statements carry records as a few
        // array parameters, so no record's bytes reach the protocol level.
        sqlx::Error::Protocol(_) => Verdict::Wait(Infra::Unreachable),
        sqlx::Error::PoolTimedOut => Verdict::Wait(Infra::Exhausted),
        // A refused certificate or a URL the operator got wrong.
        sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => Verdict::Wait(Infra::Refused),
        // The schema lacks what a statement reads, or a row does not decode
        // into the store's typed rows (`rows`: a type, a NULL, a status or
        // kind it does not know): the statements and the schema disagree.
        // No record's bytes decide a column's type, so no record causes it.
        sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => Verdict::Wait(Infra::Schema),
        _ => Verdict::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_side_postgres_errors_are_classified_by_kind() {
        let io = sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"));
        assert_eq!(of_postgres(&io), Verdict::Wait(Infra::Unreachable));
        assert_eq!(of_postgres(&sqlx::Error::PoolTimedOut), Verdict::Wait(Infra::Exhausted));
        assert_eq!(of_postgres(&sqlx::Error::PoolClosed), Verdict::Wait(Infra::Unreachable));
        assert_eq!(of_postgres(&sqlx::Error::Tls("unknown issuer".into())), Verdict::Wait(Infra::Refused));
        // rustls refusing the server's certificate, as sqlx hands it on.
        let untrusted = std::io::Error::new(std::io::ErrorKind::InvalidData, "invalid peer certificate: UnknownIssuer");
        assert_eq!(of_postgres(&sqlx::Error::Io(untrusted)), Verdict::Wait(Infra::Refused));
        assert_eq!(of_postgres(&sqlx::Error::ColumnNotFound("topic".into())), Verdict::Wait(Infra::Schema));
        // What sqlx says when a proxy drops the connection during its handshake.
        let cut = sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into());
        assert_eq!(of_postgres(&cut), Verdict::Wait(Infra::Unreachable));
        let undecodable =
            sqlx::Error::ColumnDecode { index: "status".into(), source: "unknown value \"parked\"".into() };
        assert_eq!(of_postgres(&undecodable), Verdict::Wait(Infra::Schema));
        assert_eq!(of_postgres(&sqlx::Error::RowNotFound), Verdict::Retry);
    }

    /// A Postgres error as sqlx reports it, for the cases that depend on more
    /// than the SQLSTATE.
    #[derive(Debug)]
    struct CheckViolation(&'static str);

    impl std::fmt::Display for CheckViolation {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "new row violates check constraint \"{}\"", self.0)
        }
    }

    impl std::error::Error for CheckViolation {}

    impl sqlx::error::DatabaseError for CheckViolation {
        fn message(&self) -> &str {
            "new row violates check constraint"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some("23514".into())
        }
        fn constraint(&self) -> Option<&str> {
            Some(self.0)
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::CheckViolation
        }
    }

    #[test]
    fn an_event_kind_the_schema_does_not_know_yet_waits_for_migrate_and_other_checks_are_retried() {
        let older_schema = sqlx::Error::Database(Box::new(CheckViolation("conversation_events_kind_check")));
        assert_eq!(of_postgres(&older_schema), Verdict::Wait(Infra::Schema));
        let data = sqlx::Error::Database(Box::new(CheckViolation("messages_body_check")));
        assert_eq!(of_postgres(&data), Verdict::Retry, "an integrity violation: a race a retry re-reads");
    }
}
