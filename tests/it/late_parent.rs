//! R8, the late parent (contract version 2), on the real broker and
//! Postgres: a conversation Switchboard started for a reply that came
//! before its parent is merged into the parent's conversation when the
//! parent lands elsewhere, as an agent's merge and audited; one an agent
//! touched, one older than the window and one whose sender the policy
//! refuses are only linked. List-shaped traffic, shuffled over four
//! partitions and placed by two workers at once, keeps I6 for every reply.

use crate::agent::*;
use crate::harness::TestEnv;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use switchboard_load::sample::SampleRecord;
use uuid::Uuid;

const LIST: &str = "list@acme.example";

async fn merged_into(env: &TestEnv, id: Uuid) -> Option<Uuid> {
    sqlx::query_scalar("SELECT merged_into FROM conversations WHERE id = $1")
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// Ana starts a thread (z) and answers herself (p, In-Reply-To z); Bob's
/// reply to p comes before p, so it starts a conversation of its own.
/// `cc` goes on p's Cc line.
async fn late_parent_after_a_reply(env: &TestEnv, bob: &str, cc: &str) -> (Uuid, Uuid) {
    env.publish(&mail(LIST, "b1@x", bob, Some("p@x"), &["p@x"], "")).await;
    env.run_to_end().await;
    let replies = conversation_of(&env.pool, "b1@x", LIST).await;
    env.publish(&mail(LIST, "z@x", "ana@example.com", None, &[], "")).await;
    env.run_to_end().await;
    let parents = conversation_of(&env.pool, "z@x", LIST).await;
    assert_ne!(replies, parents);
    let extra = if cc.is_empty() { String::new() } else { format!("Cc: {cc}\r\n") };
    env.publish(&mail(LIST, "p@x", "ana@example.com", Some("z@x"), &["z@x"], &extra)).await;
    (replies, parents)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_of_replies_that_came_first_is_merged_into_the_late_parents_and_audited() {
    let env = TestEnv::new(1).await;
    let (replies, parents) = late_parent_after_a_reply(&env, "bob@example.com", "bob@example.com").await;
    let stats = env.run_to_end().await;
    assert_eq!(stats.messages_by_rule.get("r1_reply_ongoing"), Some(&1), "{stats:?}");
    assert_eq!(stats.late_parent_merges, 1, "{stats:?}");
    assert_eq!(conversation_of(&env.pool, "p@x", LIST).await, parents, "p landed by its own reference");
    assert_eq!(merged_into(&env, replies).await, Some(parents), "Bob's conversation joined the thread");
    let (status, closed): (String, bool) =
        sqlx::query_as("SELECT status, closed_at IS NOT NULL FROM conversations WHERE id = $1")
            .bind(replies)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), closed), ("closed", true), "as an agent's merge");
    let event: (String, String, Uuid, Uuid) = sqlx::query_as(
        "SELECT e.from_status, e.to_status, e.related_conversation_id, m.conversation_id
         FROM conversation_events e JOIN messages m ON m.id = e.message_id
         WHERE e.kind = 'merged' AND e.conversation_id = $1 AND m.external_id = 'p@x'",
    )
    .bind(replies)
    .fetch_one(&env.pool)
    .await
    .expect("one merged event naming the late parent");
    assert_eq!(event, ("open".into(), "closed".into(), parents, parents));
    assert_eq!(related(&env).await, vec![], "merged, not linked");

    // Bob writes again: his pair leads to the thread's conversation now.
    env.publish(&mail(LIST, "b2@x", "bob@example.com", None, &[], "")).await;
    env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "b2@x", LIST).await, parents);

    let before = env.snapshot().await;
    env.run_to_end_with(&env.with_new_group()).await;
    assert_eq!(env.snapshot().await, before, "a replay changes nothing");
    assert_eq!(env.count("SELECT count(*) FROM conversation_events WHERE kind = 'merged'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touched_conversation_an_old_one_and_a_refused_sender_are_only_linked() {
    // An agent assigned the replies' conversation.
    let env = TestEnv::new(1).await;
    let (replies, parents) = late_parent_after_a_reply(&env, "bob@example.com", "bob@example.com").await;
    sqlx::query("UPDATE conversations SET assignee = 'agent-7' WHERE id = $1")
        .bind(replies)
        .execute(&env.pool)
        .await
        .unwrap();
    let stats = env.run_to_end().await;
    assert_eq!(stats.late_parent_merges, 0, "{stats:?}");
    assert_eq!(merged_into(&env, replies).await, None);
    assert_eq!(related(&env).await, vec![(replies, parents)], "touched: linked once");

    // The window is over (0s: R8 never merges).
    let env = TestEnv::with(1, |s| s.threading.late_parent_window = Duration::ZERO).await;
    let (replies, parents) = late_parent_after_a_reply(&env, "bob@example.com", "bob@example.com").await;
    env.run_to_end().await;
    assert_eq!(merged_into(&env, replies).await, None);
    assert_eq!(related(&env).await, vec![(replies, parents)], "too old: linked once");

    // Under `participants`, Dan took no part in Ana's thread: his reply's
    // conversation is linked, never merged. Bob, on p's Cc line, is merged.
    let env = TestEnv::new(1).await;
    let (replies, parents) = late_parent_after_a_reply(&env, "dan@example.com", "bob@example.com").await;
    env.run_to_end().await;
    assert_eq!(merged_into(&env, replies).await, None);
    assert_eq!(related(&env).await, vec![(replies, parents)], "a sender the policy refuses: linked once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_answer_whatever_its_id_and_a_merge_by_hand_are_touches_and_nothing_waits() {
    // An agent answered in the replies' conversation, with an id the desk
    // made (spaces around it: no decoder writes one, no reference names it).
    for id in ["  desk-1  ", "desk-2"] {
        let env = TestEnv::new(1).await;
        let (replies, parents) = late_parent_after_a_reply(&env, "bob@example.com", "bob@example.com").await;
        agent_reply(&env.pool, replies, LIST, "bob@example.com", id).await;
        let stats = env.run_to_end().await;
        assert_eq!(stats.late_parent_merges, 0, "{id:?}: {stats:?}");
        assert_eq!(merged_into(&env, replies).await, None, "{id:?}");
        assert_eq!(related(&env).await, vec![(replies, parents)], "{id:?}: answered by an agent, linked once");
        assert_eq!(env.count("SELECT count(*) FROM messages WHERE external_id = 'p@x'").await, 1, "{id:?}");
    }

    // An agent merged Carl's conversation into the replies' by hand.
    let env = TestEnv::new(1).await;
    env.publish(&mail(LIST, "b1@x", "bob@example.com", Some("p@x"), &["p@x"], "")).await;
    env.publish(&mail(LIST, "c1@x", "carl@example.com", None, &[], "")).await;
    env.publish(&mail(LIST, "z@x", "ana@example.com", None, &[], "")).await;
    env.run_to_end().await;
    let replies = conversation_of(&env.pool, "b1@x", LIST).await;
    let carls = conversation_of(&env.pool, "c1@x", LIST).await;
    let parents = conversation_of(&env.pool, "z@x", LIST).await;
    merge(&env.pool, carls, replies).await;
    let cc = "Cc: bob@example.com\r\n";
    env.publish(&mail(LIST, "p@x", "ana@example.com", Some("z@x"), &["z@x"], cc)).await;
    let stats = env.run_to_end().await;
    assert_eq!(stats.late_parent_merges, 0, "{stats:?}");
    assert_eq!(merged_into(&env, replies).await, None);
    assert_eq!(related(&env).await, vec![(replies, parents)], "merged into by hand: linked once");
}

/// A deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A list archive's shape: threads of a root and replies to any earlier
/// message of the thread, References carrying the whole chain (the newest
/// ten, as list software trims them), posters drawn from a pool with a few
/// frequent ones. Returns the records in posting order and each message's
/// parent.
fn list_archive(rng: &mut Rng, threads: usize) -> (Vec<(SampleRecord, String)>, BTreeMap<String, String>) {
    let mut posts = Vec::new();
    let mut parents = BTreeMap::new();
    for t in 0..threads {
        let size = 1 + rng.below(9) as usize;
        let mut at = t as u64 * 4;
        let mut chains: Vec<Vec<String>> = Vec::new();
        for r in 0..size {
            let id = format!("t{t}-{r}@lists.example");
            let poster = if rng.below(4) == 0 { rng.below(5) } else { 5 + rng.below(400) };
            let from = format!("poster{poster}@example.org");
            let chain = if r == 0 {
                vec![]
            } else {
                let parent = rng.below(r as u64) as usize;
                let mut chain = chains[parent].clone();
                chain.push(format!("t{t}-{parent}@lists.example"));
                chain
            };
            let refs: Vec<&str> = chain.iter().rev().take(10).rev().map(String::as_str).collect();
            let record = mail(LIST, &id, &from, refs.last().copied(), &refs, "");
            if let Some(parent) = chain.last() {
                parents.insert(id.clone(), parent.clone());
            }
            // Posting time: the thread's start, then a gap after each post.
            at += 1 + rng.below(12);
            posts.push((at, record, from));
            chains.push(chain);
        }
    }
    // Threads interleave as they do on a list: by posting time.
    let mut order: Vec<(u64, usize)> = (0..posts.len()).map(|i| (posts[i].0, i)).collect();
    order.sort_unstable();
    let posted: Vec<(SampleRecord, String)> =
        order.into_iter().map(|(_, i)| (posts[i].1.clone(), posts[i].2.clone())).collect();
    (posted, parents)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_traffic_shuffled_over_four_partitions_by_two_workers_keeps_every_reply_with_or_linked_to_its_parent() {
    let mut env = TestEnv::with(4, |s| {
        s.threading.reply_senders = "any".into();
        s.worker.batch_max_records = 20;
        s.worker.drain_timeout = Duration::from_secs(2);
    })
    .await;
    env.narrow_sms_and_messenger().await;
    let mut rng = Rng(0x5eed_1157_0000_0019);
    let (mut posted, parents) = list_archive(&mut rng, 150);
    // Mail delays: each message up to six places late.
    for i in (0..posted.len()).rev() {
        let back = rng.below(7) as usize;
        if i + back < posted.len() {
            let late = posted.remove(i);
            posted.insert(i + back, late);
        }
    }
    // Keyed by sender, as gateways do: a thread spreads over the partitions.
    for (record, sender) in &posted {
        env.publish_to(record, Some(sender)).await;
    }
    let mut gate = env.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE messages IN SHARE MODE").execute(&mut *gate).await.unwrap();
    let spawn = || {
        env.worker_command(&["run", "--stop-at-end"])
            .env("SWITCHBOARD__THREADING__REPLY_SENDERS", "any")
            .env("SWITCHBOARD__WORKER__BATCH_MAX_RECORDS", "20")
            .env("SWITCHBOARD__WORKER__DRAIN_TIMEOUT", "2s")
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start a worker process")
    };
    let workers = [spawn(), spawn()];
    crate::flow::wait_until("both workers are members of the group", Duration::from_secs(120), || async {
        crate::concurrency::group_members(&env).await == 2
    })
    .await;
    gate.commit().await.unwrap();
    for w in workers {
        let out = tokio::time::timeout(Duration::from_secs(300), w.wait_with_output()).await.expect("ends").unwrap();
        assert!(out.status.success(), "worker exited with {}", out.status);
    }
    env.run_to_end().await;
    assert_eq!(env.count("SELECT count(*) FROM messages").await, posted.len() as i64, "every post once");

    // Each message's conversation after merged_into, and the related links
    // between such ends.
    let ends: BTreeMap<String, Uuid> = sqlx::query_as(
        "WITH RECURSIVE up (message, id, next, hops) AS (
             SELECT m.external_id, c.id, c.merged_into, 0 FROM messages m JOIN conversations c ON c.id = m.conversation_id
           UNION ALL
             SELECT up.message, c.id, c.merged_into, up.hops + 1 FROM up JOIN conversations c ON c.id = up.next
             WHERE up.hops < 64)
         SELECT message, id FROM up WHERE next IS NULL",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let links: BTreeSet<(Uuid, Uuid)> = sqlx::query_as::<_, (Uuid, Uuid)>(
        "WITH RECURSIVE up (start, id, next, hops) AS (
             SELECT c.id, c.id, c.merged_into, 0 FROM conversations c
           UNION ALL
             SELECT up.start, c.id, c.merged_into, up.hops + 1 FROM up JOIN conversations c ON c.id = up.next
             WHERE up.hops < 64),
         ends AS (SELECT start, id FROM up WHERE next IS NULL)
         SELECT a.id, b.id FROM conversation_links l
         JOIN ends a ON a.start = l.conversation_id JOIN ends b ON b.start = l.related_conversation_id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
    .into_iter()
    .flat_map(|(a, b)| [(a, b), (b, a)])
    .collect();
    // The threads each conversation holds messages of (ids are t<thread>-<n>).
    let mut threads_in: BTreeMap<Uuid, BTreeSet<String>> = BTreeMap::new();
    let held: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT external_id, conversation_id FROM messages").fetch_all(&env.pool).await.unwrap();
    let conversation: BTreeMap<String, Uuid> = held.iter().cloned().collect();
    for (id, conv) in &held {
        threads_in.entry(*conv).or_default().insert(id.split('-').next().unwrap_or_default().to_owned());
    }
    let (mut together, mut linked_by_r3, mut linked, mut apart) = (0, 0, Vec::new(), Vec::new());
    for (reply, parent) in &parents {
        let (Some(r), Some(p)) = (ends.get(reply), ends.get(parent)) else { continue };
        if r == p {
            together += 1;
        } else if links.contains(&(*r, *p)) {
            // R3 put the reply, or its parent, with a sender's ongoing
            // conversation about other threads: R8 never moves such a
            // conversation, nor merges a thread into it; it links.
            if threads_in[&conversation[reply]].len() > 1 || threads_in[&conversation[parent]].len() > 1 {
                linked_by_r3 += 1;
            } else {
                linked.push(reply.clone());
            }
        } else {
            apart.push(reply.clone());
        }
    }
    let replies = together + linked_by_r3 + linked.len() + apart.len();
    eprintln!(
        "list traffic: {replies} replies, {together} in their parent's conversation, {linked_by_r3} linked where \
         the reply or its parent sits in a sender's conversation about other threads (R3), {} linked otherwise, \
         {} apart; {} merges by R8",
        linked.len(),
        apart.len(),
        env.count("SELECT count(*) FROM conversation_events WHERE kind = 'merged'").await
    );
    assert!(replies > 500, "the archive has replies: {replies}");
    assert!(apart.is_empty(), "I6: replies neither with their parent nor linked to it: {apart:?}");
    assert!(linked.is_empty(), "replies R8 should have merged, only linked: {linked:?}");
    assert_eq!(together + linked_by_r3, replies);

    let before = env.snapshot().await;
    env.run_to_end_with(&env.with_new_group()).await;
    assert_eq!(env.snapshot().await, before, "a replay changes nothing");
}
