//! Two `switchboard run` processes in one group, many partitions, keys that
//! scatter pairs and copies across partitions, and an agent closing, merging
//! and adding channels all the while; then every invariant is checked in SQL
//! and a replay must change nothing.

use crate::agent::*;
use crate::harness::TestEnv;
use futures::future::join_all;
use std::time::Duration;
use switchboard_load::sample::SampleRecord;
use uuid::Uuid;

/// A small deterministic generator, so a failure can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Traffic with pairs, replies, copies to two inboxes and redeliveries.
pub fn traffic(rng: &mut Rng, wave: u32, count: u32) -> (Vec<(SampleRecord, String)>, Vec<String>) {
    let mut records = Vec::new();
    let mut ids = Vec::new();
    for n in 0..count {
        let id = format!("w{wave}-{n}");
        let key = format!("bad-key-{}", rng.next(1000));
        let (record, endpoint) = match rng.next(4) {
            0 => {
                let endpoint = format!("80{}", rng.next(2));
                (sms(&id, &format!("3859100{}", rng.next(40)), &endpoint, "hello"), endpoint)
            }
            1 => {
                let reply = (n > 10).then(|| format!("w{wave}-{}", rng.next(n as u64)));
                (messenger(&id, &format!("{}", 5000 + rng.next(30)), "900", reply.as_deref()), "900".to_owned())
            }
            _ => {
                let from = format!("c{}@example.com", rng.next(40));
                let reply = (n > 10 && rng.next(2) == 0).then(|| format!("w{wave}-{}@x", rng.next(n as u64)));
                let mid = format!("{id}@x");
                if rng.next(5) == 0 {
                    // One email, two inboxes: the second copy under another key.
                    records.push((
                        mail("sales@acme.example", &mid, &from, reply.as_deref(), &[], ""),
                        format!("other-{key}"),
                    ));
                    ids.push(format!("email/sales@acme.example/{mid}"));
                }
                ids.push(format!("email/support@acme.example/{mid}"));
                let r = mail("support@acme.example", &mid, &from, reply.as_deref(), &[], "");
                records.push((r, key));
                continue;
            }
        };
        ids.push(format!("{}/{endpoint}/{id}", record.channel));
        records.push((record, key));
    }
    // Gateways retry: redeliver a tenth of the records.
    let again: Vec<(SampleRecord, String)> =
        (0..records.len() / 10).map(|_| records[rng.next(records.len() as u64) as usize].clone()).collect();
    records.extend(again);
    (records, ids)
}

pub async fn publish_all(env: &TestEnv, records: &[(SampleRecord, String)]) {
    for chunk in records.chunks(200) {
        join_all(chunk.iter().map(|(r, key)| env.publish_to(r, Some(key)))).await;
    }
}

/// How many members the group has, with their assignments settled.
pub async fn group_members(env: &TestEnv) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let (servers, group) = (env.settings.kafka.bootstrap_servers.clone(), env.settings.kafka.group_id.clone());
    tokio::task::spawn_blocking(move || {
        let admin: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", &servers).create().ok()?;
        let list = admin.fetch_group_list(Some(&group), Duration::from_secs(5)).ok()?;
        list.groups().iter().find(|g| g.state() == "Stable").map(|g| g.members().len())
    })
    .await
    .unwrap()
    .unwrap_or(0)
}

pub fn spawn_worker(env: &TestEnv) -> tokio::process::Child {
    env.worker_command(&["run", "--stop-at-end"])
        .env("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "10")
        // A batch waiting on the test's gate when the second member joins
        // is abandoned after this, not after the default 20 s.
        .env("SWITCHBOARD__WORKER__DRAIN_TIMEOUT", "2s")
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start a worker process")
}

/// One random agent action with the contract's SQL. Merges and closes only
/// ever make conversations not ongoing; status changes only touch ongoing
/// ones; added channels use fresh pairs: so the agent never breaks I1 itself.
async fn agent_action(env: &TestEnv, rng: &mut Rng, step: u32) {
    let ongoing: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM conversations WHERE status <> 'closed' AND merged_into IS NULL ORDER BY id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    if ongoing.len() < 2 {
        return;
    }
    let pick = |rng: &mut Rng| ongoing[rng.next(ongoing.len() as u64) as usize];
    match rng.next(5) {
        0 => set_status(&env.pool, pick(rng), "closed").await,
        1 => {
            let (from, into) = (pick(rng), pick(rng));
            if from != into {
                merge(&env.pool, from, into).await;
            }
        }
        2 => set_status(&env.pool, pick(rng), if rng.next(2) == 0 { "waiting" } else { "solved" }).await,
        3 => add_channel(&env.pool, pick(rng), "sms", "899", &format!("agent-added-{step}")).await,
        _ => set_status(&env.pool, pick(rng), "pending").await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_with_bad_keys_and_a_busy_agent_keep_every_invariant() {
    let env = TestEnv::new(6).await;
    let mut rng = Rng(0x5eed_cafe);
    let (wave1, mut expected) = traffic(&mut rng, 1, 1500);
    publish_all(&env, &wave1).await;

    // Both processes must be in the group before either can place anything,
    // or a fast first one finishes the backlog alone: inserts wait on a
    // table lock until the group has its two members.
    let mut gate = env.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE messages IN SHARE MODE").execute(&mut *gate).await.unwrap();
    let workers = [spawn_worker(&env), spawn_worker(&env)];
    crate::flow::wait_until("both workers are members of the group", Duration::from_secs(120), || async {
        group_members(&env).await == 2
    })
    .await;
    gate.commit().await.unwrap();
    let (wave2, ids2) = traffic(&mut rng, 2, 500);
    expected.extend(ids2);
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let publishing = async {
        // The second wave arrives while the workers are busy.
        crate::flow::wait_until("the workers are placing", Duration::from_secs(120), || async {
            env.count("SELECT count(*) FROM messages").await > 0
        })
        .await;
        publish_all(&env, &wave2).await;
    };
    let acting = async {
        let mut agent_rng = Rng(0xa9e7);
        let mut step = 0;
        while !*done_rx.borrow() {
            agent_action(&env, &mut agent_rng, step).await;
            step += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        step
    };
    let waiting = async {
        let mut stats = Vec::new();
        for w in workers {
            let out = tokio::time::timeout(Duration::from_secs(240), w.wait_with_output())
                .await
                .expect("worker ends")
                .unwrap();
            assert!(out.status.success(), "worker exited with {}", out.status);
            stats.push(serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("worker prints its counters"));
        }
        let _ = done_tx.send(true);
        stats
    };
    let ((), actions, worker_stats) = tokio::join!(publishing, acting, waiting);
    eprintln!("agent actions: {actions}");
    // Whatever the two stopped short of (wave 2 came late) is finished here.
    env.run_to_end().await;
    for s in &worker_stats {
        assert_eq!(s["records_dead_lettered"], 0, "{s}");
    }
    for s in &worker_stats {
        assert!(s["records"].as_u64().unwrap() > 0, "both processes took part: {worker_stats:?}");
    }

    eprintln!("worker counters: {worker_stats:?}");
    eprintln!(
        "follow-up links {}, related links {}, merged {}, closed {}",
        env.count("SELECT count(*) FROM conversation_links WHERE kind = 'follow_up'").await,
        env.count("SELECT count(*) FROM conversation_links WHERE kind = 'related'").await,
        env.count("SELECT count(*) FROM conversations WHERE merged_into IS NOT NULL").await,
        env.count("SELECT count(*) FROM conversations WHERE status = 'closed'").await,
    );
    // The agent really acted while the workers ran, so the test can fail.
    assert!(env.count("SELECT count(*) FROM conversations WHERE merged_into IS NOT NULL").await > 0, "merges happened");
    assert!(
        env.count("SELECT count(*) FROM conversations WHERE status = 'closed' AND merged_into IS NULL").await > 0,
        "closes happened"
    );
    check_invariants(&env, &expected).await;

    // I4: replaying everything with a new group after all that changes nothing.
    let before = env.snapshot().await;
    let replay = env.run_to_end_with(&env.with_new_group()).await;
    assert_eq!(replay.records_applied, 0, "{replay:?}");
    assert_eq!(env.snapshot().await, before);
}

pub async fn check_invariants(env: &TestEnv, expected: &[String]) {
    // I2: every message stored exactly once, nothing else stored.
    let mut stored: Vec<String> =
        sqlx::query_scalar("SELECT channel || '/' || endpoint || '/' || external_id FROM messages ORDER BY 1")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let mut wanted = expected.to_vec();
    wanted.sort();
    wanted.dedup();
    stored.sort();
    assert_eq!(stored.len(), wanted.len(), "I2: count");
    assert_eq!(stored, wanted, "I2: the same messages");

    check_pairs_and_links(env).await;
}

/// I1, I3 and I5 in SQL: what must hold after any run, whatever was published.
pub async fn check_pairs_and_links(env: &TestEnv) {
    // I1: at most one ongoing conversation per pair.
    let i1 = env
        .count(
            "SELECT count(*) FROM (SELECT cc.channel, cc.endpoint, cc.contact FROM conversation_channels cc
               JOIN conversations c ON c.id = cc.conversation_id
              WHERE c.status <> 'closed' AND c.merged_into IS NULL
              GROUP BY 1, 2, 3 HAVING count(DISTINCT c.id) > 1) broken",
        )
        .await;
    assert_eq!(i1, 0, "I1");

    // I3: each follow-up started is linked exactly once to the conversation
    // it follows (a conversation may follow several: one link per closed
    // conversation replied to, never two).
    let i3 = env
        .count(
            "SELECT count(*) FROM conversation_events e WHERE e.kind = 'follow_up_started'
               AND (SELECT count(*) FROM conversation_links l WHERE l.conversation_id = e.conversation_id
                      AND l.related_conversation_id = e.related_conversation_id AND l.kind = 'follow_up') <> 1",
        )
        .await;
    assert_eq!(i3, 0, "I3");
    let to_ongoing = env
        .count("SELECT count(*) FROM conversation_links l JOIN conversations c ON c.id = l.related_conversation_id WHERE l.kind = 'follow_up' AND c.status <> 'closed'")
        .await;
    assert_eq!(to_ongoing, 0, "a follow-up only ever follows a closed conversation");

    // I5: every holder of a copy is linked once to the main holder, and no
    // other related links exist.
    let (missing, extra) = crate::agent::sibling_link_errors(env).await;
    assert_eq!(missing, 0, "I5: a sibling is not linked to its main conversation");
    assert_eq!(extra, 0, "I5: a related link that no sibling set explains");
}
