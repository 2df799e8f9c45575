//! Secrets never reach logs or error messages, and no SQL is built by
//! string formatting.

use crate::harness::TestEnv;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const PG_SECRET: &str = "pg-s3cret-pw";
const KAFKA_SECRET: &str = "kafka-s3cret-pw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_password_never_appears_in_errors() {
    let env = TestEnv::new(1).await;
    let out = env
        .worker_command(&["migrate"])
        .env("DATABASE_URL", format!("postgres://app:{PG_SECRET}@127.0.0.1:5999/nowhere"))
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("run migrate");
    assert!(!out.status.success(), "migrating an unreachable database fails");
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("5999"), "the error says where it failed: {printed}");
    assert!(!printed.contains(PG_SECRET), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sasl_password_never_appears_in_logs() {
    let env = TestEnv::new(1).await;
    // SASL against a plaintext listener: the client fails and says so.
    let mut child = env
        .worker_command(&["run"])
        .env("SWITCHBOARD_RDKAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
        .env("SWITCHBOARD_RDKAFKA_SASL_MECHANISM", "PLAIN")
        .env("SWITCHBOARD_RDKAFKA_SASL_USERNAME", "app")
        .env("SWITCHBOARD_RDKAFKA_SASL_PASSWORD", KAFKA_SECRET)
        .env("DATABASE_URL", format!("postgres://app:{PG_SECRET}@127.0.0.1:5999/nowhere"))
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the worker");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let failed = line.contains("librdkafka") && (line.contains("ERROR") || line.contains("WARN"));
            seen.push(line);
            if failed {
                break;
            }
        }
    })
    .await;
    let _ = child.kill().await;
    let printed = seen.join("\n");
    assert!(waited.is_ok(), "the client reported its failure: {printed}");
    assert!(!printed.contains(KAFKA_SECRET), "{printed}");
    assert!(!printed.contains(PG_SECRET), "{printed}");
}

/// Every Rust file under `src`, with its path.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).expect("read file")));
        }
    }
}

#[test]
fn no_sql_is_built_by_string_formatting() {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 20, "the source tree was found");
    let sql = ["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", "DROP ", "ALTER ", " WHERE "];
    let mut found = Vec::new();
    for (path, text) in &files {
        for (i, line) in text.lines().enumerate() {
            let upper = line.to_uppercase();
            let formats = ["format!(", "format_args!(", "push_str(", "+ &"].iter().any(|f| line.contains(f));
            if formats && sql.iter().any(|k| upper.contains(k)) {
                found.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
        // A statement passed a formatted string, split over lines.
        for call in
            ["query(&format!", "query_scalar(&format!", "query_as(&format!", "execute(format!", "execute(&*format!"]
        {
            if text.replace(['\n', ' '], "").contains(call) {
                found.push(format!("{path}: {call}"));
            }
        }
    }
    assert!(found.is_empty(), "SQL built by formatting:\n{}", found.join("\n"));
}
