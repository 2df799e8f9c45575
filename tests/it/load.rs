//! `switchboard load` through the real broker: the kinds it reports are what
//! the worker finds (malformed records are dead-lettered, gateway retries are
//! duplicates), the same seed publishes the same records again, and a rate
//! holds the publisher back.

use crate::harness::TestEnv;
use std::collections::HashMap;

async fn load(env: &TestEnv, args: &[&str]) -> (HashMap<String, u64>, f64) {
    let mut full = vec!["load", "--metrics-addr", "off"];
    full.extend_from_slice(args);
    let out = env.worker_command(&full).stderr(std::process::Stdio::piped()).output().await.expect("load runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let kinds = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kinds: "))
        .unwrap_or_else(|| panic!("no kinds line in {stdout}"))
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect();
    let secs = stdout
        .split(" records in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {stdout}"));
    (kinds, secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_traffic_is_what_it_says_and_the_same_seed_publishes_the_same_records() {
    let env = TestEnv::new(2).await;
    let args = ["--records", "400", "--seed", "9", "--customers", "20", "--duplicates", "0.1", "--malformed", "0.05"];
    let (kinds, _) = load(&env, &args).await;
    assert_eq!(kinds.values().sum::<u64>(), 400);
    let first = env.run_to_end().await;
    assert_eq!(first.records, 400);
    assert_eq!(first.records_dead_lettered, kinds["malformed"]);
    assert_eq!(first.records_duplicate, kinds["duplicate"]);

    // The same seed again: the same records, so nothing new is placed.
    let (again, _) = load(&env, &args).await;
    assert_eq!(again, kinds);
    let second = env.run_to_end().await;
    assert_eq!(second.records_applied, 0);
    assert_eq!(second.records_duplicate, 400 - kinds["malformed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_holds_the_publisher_back() {
    let env = TestEnv::new(1).await;
    // 200 records at 100 per second cannot take less than about two seconds.
    let (_, secs) = load(&env, &["--records", "200", "--rate", "100"]).await;
    assert!(secs >= 1.9, "{secs} s");
}
