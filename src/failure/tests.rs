use super::*;

#[test]
fn postgres_unreachable_or_failing_over_is_waited_out() {
    for code in ["08000", "08006", "08001", "58030"] {
        assert_eq!(of_sqlstate(code), Verdict::Wait(Infra::Unreachable), "{code}");
    }
    for code in ["57P01", "57P02", "57P03", "25006"] {
        assert_eq!(of_sqlstate(code), Verdict::Wait(Infra::Failover), "{code}");
    }
}

#[test]
fn deadlocks_serialization_failures_and_lock_timeouts_are_contention() {
    for code in ["40001", "40P01", "55P03", "55006", "57014"] {
        assert_eq!(of_sqlstate(code), Verdict::Wait(Infra::Contention), "{code}");
    }
}

#[test]
fn a_refused_credential_grant_or_database_waits_for_the_operator() {
    for code in ["28000", "28P01", "42501", "3D000", "26000", "42P05"] {
        assert_eq!(of_sqlstate(code), Verdict::Wait(Infra::Refused), "{code}");
    }
}

#[test]
fn a_schema_behind_the_worker_waits_for_migrate() {
    for code in ["42P01", "42703", "42883", "42704", "42P10", "42601", "42804", "3F000"] {
        assert_eq!(of_sqlstate(code), Verdict::Wait(Infra::Schema), "{code}");
    }
}

#[test]
fn exhausted_shared_resources_are_waited_out() {
    for code in ["53100", "53300"] {
        assert_eq!(of_sqlstate(code), Verdict::Wait(Infra::Exhausted), "{code}");
    }
}

#[test]
fn data_exceptions_and_program_limits_are_the_inputs_own() {
    // invalid byte sequence, NUL in text, numeric out of range; index row
    // too large, too many arguments.
    for code in ["22021", "22P05", "22003", "54000", "54023"] {
        assert_eq!(of_sqlstate(code), Verdict::Isolate, "{code}");
    }
}

#[test]
fn out_of_shared_memory_and_unknown_errors_are_retried_a_bounded_number_of_times() {
    // out_of_memory ("out of shared memory"), temp_file_limit,
    // unique_violation, internal_error, raise_exception, a code nobody
    // assigned.
    for code in ["53200", "53400", "23505", "XX000", "P0001", "ZZ999", ""] {
        assert_eq!(of_sqlstate(code), Verdict::Retry, "{code:?}");
    }
}

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
    assert_eq!(of_postgres(&sqlx::Error::RowNotFound), Verdict::Retry);
}

#[test]
fn a_record_the_broker_will_never_take_is_replaced() {
    for code in
        [RDKafkaErrorCode::MessageSizeTooLarge, RDKafkaErrorCode::MessageBatchTooLarge, RDKafkaErrorCode::InvalidRecord]
    {
        assert_eq!(of_kafka(&KafkaError::MessageProduction(code)), PublishVerdict::TooLarge, "{code:?}");
    }
}

#[test]
fn broker_outages_and_refused_acls_are_waited_out() {
    let is = |code| of_kafka(&KafkaError::MessageProduction(code));
    for code in [
        RDKafkaErrorCode::MessageTimedOut,
        RDKafkaErrorCode::AllBrokersDown,
        RDKafkaErrorCode::BrokerTransportFailure,
        RDKafkaErrorCode::NotLeaderForPartition,
        RDKafkaErrorCode::QueueFull,
    ] {
        assert_eq!(is(code), PublishVerdict::Is(Verdict::Wait(Infra::Unreachable)), "{code:?}");
    }
    for code in [
        RDKafkaErrorCode::TopicAuthorizationFailed,
        RDKafkaErrorCode::SaslAuthenticationFailed,
        RDKafkaErrorCode::SSL,
        RDKafkaErrorCode::UnknownTopicOrPartition,
    ] {
        assert_eq!(is(code), PublishVerdict::Is(Verdict::Wait(Infra::Refused)), "{code:?}");
    }
    assert_eq!(is(RDKafkaErrorCode::Fail), PublishVerdict::Is(Verdict::Retry));
    assert_eq!(of_kafka(&KafkaError::Canceled), PublishVerdict::Is(Verdict::Retry));
}

#[test]
fn a_panic_message_is_read_from_either_payload_type() {
    let owned: Box<dyn std::any::Any + Send> = Box::new(String::from("boom"));
    let fixed: Box<dyn std::any::Any + Send> = Box::new("bang");
    let other: Box<dyn std::any::Any + Send> = Box::new(7_u8);
    assert_eq!(panic_message(owned.as_ref()), "boom");
    assert_eq!(panic_message(fixed.as_ref()), "bang");
    assert_eq!(panic_message(other.as_ref()), "a panic without a message");
}

#[test]
fn every_cause_has_its_own_label_and_a_sentence() {
    let labels: std::collections::BTreeSet<_> = Infra::ALL.iter().map(|i| i.label()).collect();
    assert_eq!(labels.len(), Infra::ALL.len());
    assert!(Infra::ALL.iter().all(|i| !i.sentence().is_empty()));
    assert_eq!(Verdict::Retry.label(), "retry");
    assert_eq!(Verdict::Wait(Infra::Schema).label(), "schema");
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
