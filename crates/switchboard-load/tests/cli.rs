//! The command refuses settings that cannot make traffic before it touches a
//! service, and has the three subcommands it documents.

use std::process::Command;

fn load(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard-load"))
        .args(args)
        // Nothing listens there: a refusal must come before any connection.
        .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("switchboard-load runs")
}

#[test]
fn impossible_traffic_is_refused_with_the_reason_and_no_connection() {
    for (args, words) in [
        (&["traffic", "--rate", "0"][..], "--rate must be above zero"),
        (&["traffic", "--agents", "0"][..], "--agents must be above zero"),
        (&["traffic", "--mix", "sms=0,messenger=0,email=0"][..], "mix"),
        (&["traffic", "--duplicates", "1.5"][..], "each share is between 0 and 1"),
    ] {
        let out = load(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(words), "{args:?}: expected {words:?} in {stderr}");
    }
}

#[test]
fn the_subcommands_are_traffic_sample_and_ceiling() {
    let out = load(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for name in ["traffic", "sample", "ceiling"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(name)), "no {name} in {help}");
    }
}
