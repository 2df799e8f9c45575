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
