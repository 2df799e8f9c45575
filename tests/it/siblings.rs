//! R7 and I5: one email reaching two of our inboxes is linked exactly once,
//! pointing at the earliest created conversation, whatever the order.

use crate::agent::*;
use crate::harness::TestEnv;
use uuid::Uuid;

const SUPPORT: &str = "support@acme.example";
const SALES: &str = "sales@acme.example";
const ANA: &str = "ana@example.com";

async fn both_copies_in_order(first: &str, second: &str) -> (TestEnv, Uuid, Uuid) {
    let env = TestEnv::new(1).await;
    env.publish(&mail(first, "both@example.com", ANA, None, &[], "")).await;
    env.run_to_end().await;
    env.publish(&mail(second, "both@example.com", ANA, None, &[], "")).await;
    let stats = env.run_to_end().await;
    // The counter behind /metrics' switchboard_links_made_total{kind="sibling"}.
    assert_eq!(stats.links_made.get("sibling"), Some(&1), "{stats:?}");
    let a = conversation_of(&env.pool, "both@example.com", first).await;
    let b = conversation_of(&env.pool, "both@example.com", second).await;
    (env, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_copies_in_either_order_link_the_later_conversation_to_the_earlier() {
    for (first, second) in [(SUPPORT, SALES), (SALES, SUPPORT)] {
        let (env, earlier, later) = both_copies_in_order(first, second).await;
        assert_ne!(earlier, later);
        assert_eq!(related(&env).await, vec![(later, earlier)], "{first} then {second}");
        assert_eq!(env.count("SELECT count(*) FROM conversation_events WHERE kind = 'linked'").await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ongoing_conversation_is_the_main_one_when_the_customer_adds_a_second_inbox_in_either_order() {
    for second_first in [true, false] {
        let env = TestEnv::new(1).await;
        env.publish(&mail(SUPPORT, "old@example.com", ANA, None, &[], "")).await;
        env.run_to_end().await;
        let a = conversation_of(&env.pool, "old@example.com", SUPPORT).await;
        // The customer writes to inbox 1 with inbox 2 in Cc: two copies.
        let (to_support, to_sales) =
            (mail(SUPPORT, "cc@example.com", ANA, None, &[], ""), mail(SALES, "cc@example.com", ANA, None, &[], ""));
        let order = if second_first { [to_sales, to_support] } else { [to_support, to_sales] };
        for r in &order {
            env.publish(r).await;
            env.run_to_end().await;
        }
        assert_eq!(conversation_of(&env.pool, "cc@example.com", SUPPORT).await, a);
        let b = conversation_of(&env.pool, "cc@example.com", SALES).await;
        assert_eq!(related(&env).await, vec![(b, a)], "B points to A (sales copy first: {second_first})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_on_different_partitions_processed_at_once_are_linked_exactly_once() {
    let env = TestEnv::new(4).await;
    // Twenty emails, each to three inboxes, keyed so copies spread over partitions.
    let inboxes = ["support@acme.example", "sales@acme.example", "billing@acme.example"];
    for n in 0..20 {
        for (i, inbox) in inboxes.iter().enumerate() {
            env.publish_to(
                &mail(inbox, &format!("multi-{n}@example.com"), &format!("c{n}@example.com"), None, &[], ""),
                Some(&format!("k{n}-{i}")),
            )
            .await;
        }
    }
    env.run_to_end().await;
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, 60);
    assert_eq!(
        env.count("SELECT count(*) FROM conversation_links WHERE kind = 'related'").await,
        40,
        "two links per email"
    );
    // Each link points at the earliest created holder of its Message-ID, and
    // there is no other.
    assert_eq!(sibling_link_errors(&env).await, (0, 0));
    // A replay changes nothing (I4, I5).
    let before = env.snapshot().await;
    env.run_to_end_with(&env.with_new_group()).await;
    assert_eq!(env.snapshot().await, before);
}

/// The example: Ana has D at billing (oldest) and A at support.
/// Email X goes to support and sales (A, new B: B->A); email Y to support,
/// sales and billing (main D: A->D, B->D). The links are the union over
/// both Message-IDs whatever the order: Y must not delete X's B->A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_sibling_sets_keep_the_union_of_their_links_in_either_order() {
    const BILLING: &str = "billing@acme.example";
    for x_first in [true, false] {
        // One record per batch: each copy sees the holders and links the
        // copies before it left (the case where a recomputation deleted
        // another Message-ID's link).
        let env = TestEnv::with(1, |s| s.worker.batch_max_records = 1).await;
        env.publish(&mail(BILLING, "d@example.com", ANA, None, &[], "")).await;
        env.run_to_end().await;
        env.publish(&mail(SUPPORT, "a@example.com", ANA, None, &[], "")).await;
        env.run_to_end().await;
        let (d, a) = (
            conversation_of(&env.pool, "d@example.com", BILLING).await,
            conversation_of(&env.pool, "a@example.com", SUPPORT).await,
        );
        let x = [mail(SUPPORT, "x@example.com", ANA, None, &[], ""), mail(SALES, "x@example.com", ANA, None, &[], "")];
        let y = [
            mail(SUPPORT, "y@example.com", ANA, None, &[], ""),
            mail(SALES, "y@example.com", ANA, None, &[], ""),
            mail(BILLING, "y@example.com", ANA, None, &[], ""),
        ];
        let (first, second): (&[_], &[_]) = if x_first { (&x, &y) } else { (&y, &x) };
        for r in first {
            env.publish(r).await;
        }
        env.run_to_end().await;
        for r in second {
            env.publish(r).await;
        }
        env.run_to_end().await;
        let b = conversation_of(&env.pool, "x@example.com", SALES).await;
        assert_eq!(conversation_of(&env.pool, "y@example.com", SALES).await, b, "the pair's ongoing conversation");
        assert_eq!(conversation_of(&env.pool, "x@example.com", SUPPORT).await, a);
        let mut wanted = vec![(b, a), (a, d), (b, d)];
        wanted.sort();
        assert_eq!(related(&env).await, wanted, "X first: {x_first}");
        assert_eq!(sibling_link_errors(&env).await, (0, 0));
        let before = env.snapshot().await;
        env.run_to_end_with(&env.with_new_group()).await;
        assert_eq!(env.snapshot().await, before, "a replay changes nothing");
    }
}

/// A main holder that changes (an older conversation receives a copy last)
/// still drops the link only that Message-ID called for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_no_message_id_calls_for_any_more_is_dropped() {
    const BILLING: &str = "billing@acme.example";
    let env = TestEnv::new(1).await;
    env.publish(&mail(SUPPORT, "a@example.com", ANA, None, &[], "")).await;
    env.run_to_end().await;
    let a = conversation_of(&env.pool, "a@example.com", SUPPORT).await;
    // Z reaches sales and billing first (new B and C: C->B), then support (A, older).
    for inbox in [SALES, BILLING] {
        env.publish(&mail(inbox, "z@example.com", ANA, None, &[], "")).await;
        env.run_to_end().await;
    }
    let (b, c) = (
        conversation_of(&env.pool, "z@example.com", SALES).await,
        conversation_of(&env.pool, "z@example.com", BILLING).await,
    );
    assert_eq!(related(&env).await, vec![(c, b)]);
    env.publish(&mail(SUPPORT, "z@example.com", ANA, None, &[], "")).await;
    env.run_to_end().await;
    let mut wanted = vec![(b, a), (c, a)];
    wanted.sort();
    assert_eq!(related(&env).await, wanted);
}

/// Overlapping sibling sets placed concurrently: one customer writes forty
/// emails, each to two to four of our inboxes, with copies scattered over
/// partitions and placed by two workers at once; batches recompute the
/// links of Message-IDs that share conversations at the same time. In the
/// end every Message-ID's links exist and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_sibling_sets_placed_concurrently_end_with_exactly_the_union() {
    let env = TestEnv::with(4, |s| s.worker.batch_max_records = 3).await;
    let inboxes = ["support@acme.example", "sales@acme.example", "billing@acme.example", "legal@acme.example"];
    let mut seed: u64 = 0x0dd_5eed;
    let mut next = |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    for n in 0..40 {
        let mask = 1 + next(15);
        let chosen: Vec<&str> = (0..4).filter(|i| mask & (1 << i) != 0).map(|i| inboxes[i]).collect();
        let chosen = if chosen.len() < 2 { vec![chosen[0], inboxes[(n % 3) + 1]] } else { chosen };
        for inbox in &chosen {
            let key = format!("k{}", next(1000));
            env.publish_to(&mail(inbox, &format!("o{n}@example.com"), ANA, None, &[], ""), Some(&key)).await;
        }
    }
    let (a, b) = tokio::join!(env.run_to_end(), env.run_to_end());
    assert_eq!(a.records_dead_lettered + b.records_dead_lettered, 0);
    env.run_to_end().await;
    let links = env.count("SELECT count(*) FROM conversation_links WHERE kind = 'related'").await;
    let linked = env.count("SELECT count(*) FROM conversation_events WHERE kind = 'linked'").await;
    eprintln!("related links {links}, linked events {linked}");
    assert!(links >= 3, "the emails overlap at several inboxes");
    assert_eq!(sibling_link_errors(&env).await, (0, 0), "(missing, extra) sibling links");
    let before = env.snapshot().await;
    env.run_to_end_with(&env.with_new_group()).await;
    assert_eq!(env.snapshot().await, before, "a replay changes nothing");
}
