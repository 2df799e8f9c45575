//! `switchboard-load traffic` through the real broker: the kinds it reports are what
//! the worker finds (malformed records are dead-lettered, gateway retries are
//! duplicates), the same seed publishes the same records again, and a rate
//! holds the publisher back. `switchboard-load delete-topics` leaves none of
//! the five topics behind.

use crate::harness::TestEnv;
use std::collections::HashMap;

async fn load(env: &TestEnv, args: &[&str]) -> (HashMap<String, u64>, f64) {
    let mut full = vec!["traffic", "--metrics-addr", "off"];
    full.extend_from_slice(args);
    let out = env.load_command(&full).stderr(std::process::Stdio::piped()).output().await.expect("load runs");
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

/// Issue 21, item 1: `switchboard-load traffic --agents` acts as the desk while the traffic
/// flows and a worker places it: replies then meet waiting, solved, closed
/// and merged conversations, so reopens (R5), follow-ups (R2) and merges
/// happen under load, and the invariants hold after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_acting_while_traffic_flows_make_reopens_follow_ups_and_merges_and_keep_the_invariants() {
    let env = TestEnv::new(2).await;
    let running = env.start_worker(&env.settings);
    let mut args = vec!["traffic", "--metrics-addr", "off", "--records", "1500", "--rate", "500", "--agents", "60"];
    args.extend(["--customers", "40", "--replies", "0.4", "--mix", "sms=50,messenger=20,email=30", "--seed", "21"]);
    let out = env.load_command(&args).stderr(std::process::Stdio::piped()).output().await.expect("load runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let agents =
        stdout.lines().find(|l| l.starts_with("agents: ")).unwrap_or_else(|| panic!("no agents line: {stdout}"));
    for action in ["waiting", "solved", "closed", "merged", "channel_added"] {
        assert!(agents.contains(&format!("{action} ")), "the agents did {action}: {agents}");
    }
    running.stop().await;
    env.run_to_end().await;
    eprintln!("{agents}");

    assert_eq!(env.count("SELECT count(*) FROM messages").await, 1500, "every record placed once");
    let kinds = |k: &str| format!("SELECT count(*) FROM conversation_events WHERE kind = '{k}'");
    assert!(env.count(&kinds("reopened")).await > 0, "R5 under load");
    assert!(env.count(&kinds("follow_up_started")).await > 0, "R2 or R4 follow-ups under load");
    assert!(env.count("SELECT count(*) FROM conversations WHERE merged_into IS NOT NULL").await > 0, "merges");
    // I1, I3 and I5, agents' pairs and merges included.
    crate::concurrency::check_pairs_and_links(&env).await;
    let before = env.snapshot().await;
    env.run_to_end_with(&env.with_new_group()).await;
    assert_eq!(env.snapshot().await, before, "I4: a replay changes nothing");
}

/// The topics of `names` the broker still lists.
fn listed(env: &TestEnv, names: &[String]) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.settings.kafka.bootstrap_servers)
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("metadata client");
    let metadata = consumer.fetch_metadata(None, std::time::Duration::from_secs(10)).expect("metadata");
    metadata.topics().iter().map(|t| t.name().to_owned()).filter(|t| names.contains(t)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topics_leaves_none_of_the_five_and_again_is_no_error() {
    let env = TestEnv::new(1).await;
    let t = &env.settings.kafka.topics;
    let names = [&t.email, &t.sms, &t.messenger, &t.dlq, &t.events].map(|n| n.to_string());
    assert_eq!(listed(&env, &names).len(), 5, "the test's topics exist first");
    for round in 0..2 {
        let out = env.load_command(&["delete-topics"]).stderr(std::process::Stdio::piped()).output().await.unwrap();
        assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Deletion is asynchronous on the broker: wait until its metadata says so.
    crate::flow::wait_until("the broker lists none of the five", std::time::Duration::from_secs(30), || async {
        listed(&env, &names).is_empty()
    })
    .await;
}
