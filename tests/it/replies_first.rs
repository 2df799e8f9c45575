//! R1r: replies that reach the worker before their parent (other partitions,
//! mail delays) are joined by the parent, and the thread's other
//! conversations are linked `related` to it exactly once, also when the
//! parent and its replies are placed at the same time by two workers.

use crate::agent::*;
use crate::harness::TestEnv;
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

const LIST: &str = "list@acme.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_placed_after_its_replies_joins_the_earliest_replys_conversation_in_either_order() {
    for bob_first in [true, false] {
        let env = TestEnv::new(3).await;
        // Two people answer Ana's mail; their replies are keyed by sender,
        // land on other partitions than the parent and are placed first.
        let bob = mail(LIST, "r-bob@x", "bob@example.com", Some("parent@x"), &["parent@x"], "");
        let cyd = mail(LIST, "r-cyd@x", "cyd@example.com", None, &["parent@x"], "");
        let (first, second) = if bob_first { (&bob, &cyd) } else { (&cyd, &bob) };
        env.publish_to(first, Some("bob@example.com")).await;
        env.run_to_end().await;
        env.publish_to(second, Some("cyd@example.com")).await;
        env.run_to_end().await;
        let (c_bob, c_cyd) =
            (conversation_of(&env.pool, "r-bob@x", LIST).await, conversation_of(&env.pool, "r-cyd@x", LIST).await);
        assert_ne!(c_bob, c_cyd, "before the parent, two senders are two conversations");

        env.publish_to(&mail(LIST, "parent@x", "ana@example.com", None, &[], ""), Some("ana@example.com")).await;
        let stats = env.run_to_end().await;
        assert_eq!(stats.messages_by_rule.get("r1r_replies_first"), Some(&1), "{stats:?}");
        let (earlier, later) = if bob_first { (c_bob, c_cyd) } else { (c_cyd, c_bob) };
        assert_eq!(conversation_of(&env.pool, "parent@x", LIST).await, earlier, "the earliest stored reply decides");
        assert_eq!(related(&env).await, vec![(later, earlier)], "bob first: {bob_first}");
        assert_eq!(
            env.count("SELECT count(*) FROM conversation_events WHERE kind = 'linked'").await,
            1,
            "the link is audited once"
        );
        assert_eq!(env.count("SELECT count(*) FROM conversations").await, 2, "the parent started nothing");

        let before = env.snapshot().await;
        env.run_to_end_with(&env.with_new_group()).await;
        assert_eq!(env.snapshot().await, before, "a replay changes nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messenger_message_whose_reply_came_first_joins_it() {
    let env = TestEnv::new(2).await;
    env.publish(&messenger("m_reply", "5001", "900", Some("m_parent"))).await;
    env.run_to_end().await;
    let reply_conv = conversation_of(&env.pool, "m_reply", "900").await;
    env.publish(&messenger("m_parent", "5001", "900", None)).await;
    env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "m_parent", "900").await, reply_conv);
}

/// A thread's conversations: the parent's, and every other one holding a reply.
async fn thread_errors(env: &TestEnv, threads: usize, replies: usize) -> Vec<String> {
    let mut errors = Vec::new();
    let links: BTreeSet<(Uuid, Uuid)> = related(env).await.into_iter().collect();
    let mut explained = BTreeSet::new();
    for t in 0..threads {
        let parent = conversation_of(&env.pool, &format!("p{t}@x"), LIST).await;
        let mut others = BTreeSet::new();
        for r in 0..replies {
            let c = conversation_of(&env.pool, &format!("p{t}-r{r}@x"), LIST).await;
            if c != parent {
                others.insert(c);
            }
        }
        for other in others {
            if links.contains(&(other, parent)) {
                explained.insert((other, parent));
            } else {
                errors.push(format!("thread {t}: conversation {other} holds a reply but is not linked to {parent}"));
            }
        }
    }
    for extra in links.difference(&explained) {
        errors.push(format!("a related link no thread explains: {extra:?}"));
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_placing_parents_and_replies_at_once_keep_every_thread_together() {
    const THREADS: usize = 60;
    const REPLIES: usize = 3;
    let mut env = TestEnv::with(4, |s| {
        s.worker.batch_max_records = 5;
        // A batch held at the gate when the second member joins is
        // abandoned after this, not after the default 20 s.
        s.worker.drain_timeout = Duration::from_secs(2);
    })
    .await;
    // Only email is published. With four partitions for each channel, the
    // assignor once gave the second member only SMS and Messenger ones, and
    // it placed nothing; one each for those leaves it an email partition.
    env.narrow_sms_and_messenger().await;
    // Replies first in each partition's log, parents after: keyed by
    // sender, so a thread spreads over the partitions and its records are
    // placed concurrently by the two workers' partition tasks.
    for t in 0..THREADS {
        for r in 0..REPLIES {
            let sender = format!("s{t}-{r}@example.com");
            let refs = [format!("p{t}@x")];
            let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
            let reply = mail(LIST, &format!("p{t}-r{r}@x"), &sender, Some(refs[0]), &refs, "");
            env.publish_to(&reply, Some(&sender)).await;
        }
    }
    for t in 0..THREADS {
        let author = format!("author{t}@example.com");
        env.publish_to(&mail(LIST, &format!("p{t}@x"), &author, None, &[], ""), Some(&author)).await;
    }
    // Two worker processes. Both must be in the group before either places
    // anything, or a fast first one finishes alone: inserts wait on a table
    // lock until the group has its two members.
    let mut gate = env.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE messages IN SHARE MODE").execute(&mut *gate).await.unwrap();
    let workers = [crate::concurrency::spawn_worker(&env), crate::concurrency::spawn_worker(&env)];
    crate::flow::wait_until("both workers are members of the group", Duration::from_secs(120), || async {
        crate::concurrency::group_members(&env).await == 2
    })
    .await;
    gate.commit().await.unwrap();
    let mut took_part = Vec::new();
    for w in workers {
        let out = tokio::time::timeout(Duration::from_secs(240), w.wait_with_output()).await.expect("ends").unwrap();
        assert!(out.status.success(), "worker exited with {}", out.status);
        let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("counters");
        took_part.push(stats["records"].as_u64().unwrap_or(0));
    }
    assert!(took_part.iter().all(|n| *n > 0), "both workers took part: {took_part:?}");
    env.run_to_end().await;
    assert_eq!(env.count("SELECT count(*) FROM messages").await, (THREADS * (REPLIES + 1)) as i64);
    let errors = thread_errors(&env, THREADS, REPLIES).await;
    assert!(errors.is_empty(), "{} errors: {errors:#?}", errors.len());

    let before = env.snapshot().await;
    env.run_to_end_with(&env.with_new_group()).await;
    assert_eq!(env.snapshot().await, before, "a replay changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_parents_whose_replies_sit_in_each_others_conversations_link_them_once_either_way() {
    let env = TestEnv::new(1).await;
    // Ana's replies land in her conversation A, Bob's in his B. The earliest
    // reply to p-1 is Ana's and to p-2 Bob's, so R1r puts p-1 in A (linking
    // B to A) and p-2 in B (linking A to B): the same pair twice, which I5
    // forbids in either direction.
    let replies = [
        mail(LIST, "a-1@x", "ana@example.com", Some("p-1@x"), &["p-1@x"], ""),
        mail(LIST, "b-1@x", "bob@example.com", Some("p-2@x"), &["p-2@x"], ""),
        mail(LIST, "a-2@x", "ana@example.com", Some("p-2@x"), &["p-2@x"], ""),
        mail(LIST, "b-2@x", "bob@example.com", Some("p-1@x"), &["p-1@x"], ""),
    ];
    for reply in &replies {
        env.publish(reply).await;
    }
    env.run_to_end().await;
    let (a, b) = (conversation_of(&env.pool, "a-1@x", LIST).await, conversation_of(&env.pool, "b-1@x", LIST).await);
    assert_ne!(a, b);
    // Both parents in one batch.
    env.publish(&mail(LIST, "p-1@x", "cyd@example.com", None, &[], "")).await;
    env.publish(&mail(LIST, "p-2@x", "cyd@example.com", None, &[], "")).await;
    let stats = env.run_to_end().await;
    assert_eq!(stats.records_dead_lettered, 0, "{stats:?}");
    assert_eq!(stats.messages_by_rule.get("r1r_replies_first"), Some(&2), "{stats:?}");
    assert_eq!(conversation_of(&env.pool, "p-1@x", LIST).await, a);
    assert_eq!(conversation_of(&env.pool, "p-2@x", LIST).await, b);
    let links = related(&env).await;
    assert_eq!(links.len(), 1, "one link for the pair, whichever way: {links:?}");
    assert!(links[0] == (b, a) || links[0] == (a, b), "{links:?}");
    // The store refuses the reverse of a stored link outright.
    let (from, to) = links[0];
    let reverse = sqlx::query(
        "INSERT INTO conversation_links (conversation_id, related_conversation_id, kind) VALUES ($1, $2, 'related')",
    )
    .bind(to)
    .bind(from)
    .execute(&env.pool)
    .await;
    let refused = reverse.expect_err("the unordered pair is unique in the database");
    let refused = refused.as_database_error().expect("a database error");
    assert_eq!(refused.code().as_deref(), Some("23505"), "{refused}");
    assert_eq!(refused.constraint(), Some("conversation_links_related_once_per_pair"));
}
