//! I1 against the agent's add-channel (contract section 4): the database
//! serialises a binding with the worker's decision for the pair, and refuses
//! a binding or a reopen that would give a pair a second ongoing conversation.

use crate::agent::*;
use crate::harness::TestEnv;
use std::time::Duration;
use switchboard::worker::{self, Mode};

const SUPPORT: &str = "support@acme.example";
const ANA: &str = "ana@example.com";
const ANA_PHONE: &str = "385916242493";

/// An agent binding Ana's SMS pair (`$2`: her phone) to conversation `$1`.
const BIND_ANA_SMS: &str =
    "INSERT INTO conversation_channels (conversation_id, channel, endpoint, contact) VALUES ($1, 'sms', '800', $2)";

/// Ana writes once by email and once by SMS, each placed in its own new
/// conversation; returns (the email's, the SMS's).
async fn ana_by_mail_and_by_sms(env: &TestEnv) -> (uuid::Uuid, uuid::Uuid) {
    env.publish(&mail(SUPPORT, "a1@example.com", ANA, None, &[], "")).await;
    env.publish(&sms("s1", "+385 91 624 2493", "800", "hello")).await;
    env.run_to_end().await;
    (conversation_of(&env.pool, "a1@example.com", SUPPORT).await, conversation_of(&env.pool, "s1", "800").await)
}

/// Pairs with more than one ongoing conversation bound to them.
async fn i1_violations(env: &TestEnv) -> i64 {
    env.count(
        "SELECT count(*) FROM (
           SELECT channel, endpoint, contact FROM (
             SELECT cc.channel, cc.endpoint, cc.contact, c.id FROM conversation_channels cc JOIN conversations c ON c.id = cc.conversation_id
              WHERE c.status <> 'closed' AND c.merged_into IS NULL
             UNION
             SELECT origin_channel, origin_endpoint, origin_contact, id FROM conversations
              WHERE status <> 'closed' AND merged_into IS NULL AND origin_channel IS NOT NULL) b
           GROUP BY 1, 2, 3 HAVING count(DISTINCT id) > 1) broken",
    )
    .await
}

/// Waits until some session of this test's database waits for an advisory lock.
pub async fn until_a_session_waits_for_an_advisory_lock(env: &TestEnv) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = env
            .count(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()",
            )
            .await;
        if waiting > 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the worker never waited for the agent's binding");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_channel_held_open_across_the_workers_batch_makes_the_batch_wait_and_join_it() {
    let env = TestEnv::new(1).await;
    env.publish(&mail(SUPPORT, "a1@example.com", ANA, None, &[], "")).await;
    env.run_to_end().await;
    let a = conversation_of(&env.pool, "a1@example.com", SUPPORT).await;

    // The agent adds Ana's phone to A and has not committed yet.
    let mut agent = env.pool.begin().await.unwrap();
    sqlx::query(BIND_ANA_SMS).bind(a).bind(ANA_PHONE).execute(&mut *agent).await.unwrap();

    // Meanwhile Ana texts that number, and the worker places it.
    env.publish(&sms("s1", "+385 91 624 2493", "800", "it's me")).await;
    let settings = env.settings.clone();
    let run = tokio::spawn(async move { worker::run(&settings, Mode::StopAtEnd, std::future::pending()).await });
    until_a_session_waits_for_an_advisory_lock(&env).await;
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE channel = 'sms'").await, 0, "the batch waits");

    agent.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(120), run).await.expect("the worker ends").unwrap().unwrap();
    assert_eq!(conversation_of(&env.pool, "s1", "800").await, a, "the message joins the bound conversation");
    assert_eq!(env.count("SELECT count(*) FROM conversations").await, 1);
    assert_eq!(i1_violations(&env).await, 0, "I1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_or_reopening_into_a_pair_that_has_an_ongoing_conversation_is_refused() {
    let env = TestEnv::new(1).await;
    let (a, b) = ana_by_mail_and_by_sms(&env).await;

    // B is the pair's ongoing conversation: binding the pair to A is refused.
    let err = sqlx::query(BIND_ANA_SMS).bind(a).bind(ANA_PHONE).execute(&env.pool).await.unwrap_err();
    let db = err.as_database_error().expect("a database error");
    assert_eq!(db.code().as_deref(), Some("23505"), "{db}");
    assert_eq!(db.constraint(), Some("conversation_channels_one_ongoing_per_pair"), "{db}");

    // Once B is closed the binding is allowed, and reopening B is refused.
    set_status(&env.pool, b, "closed").await;
    add_channel(&env.pool, a, "sms", "800", ANA_PHONE).await;
    let reopen =
        sqlx::query("UPDATE conversations SET status = 'open', closed_at = NULL, updated_at = now() WHERE id = $1")
            .bind(b)
            .execute(&env.pool)
            .await
            .unwrap_err();
    assert_eq!(
        reopen.as_database_error().and_then(|e| e.constraint().map(str::to_owned)).as_deref(),
        Some("conversation_channels_one_ongoing_per_pair")
    );
    assert_eq!(i1_violations(&env).await, 0, "I1");

    // The worker's next message on the pair goes to A.
    env.publish(&sms("s2", "+385 91 624 2493", "800", "again")).await;
    env.run_to_end().await;
    assert_eq!(conversation_of(&env.pool, "s2", "800").await, a);
}

/// The worker's sessions are planned for index probes and say that they
/// check pairs themselves; the add-channel trigger then does not fire for
/// their rows (they hold the pair lock and read every binding in their
/// snapshot), while a desktop session binding the same row is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_workers_sessions_skip_the_bound_pair_check_and_they_plan_for_index_probes() {
    let env = TestEnv::new(1).await;
    let (a, _) = ana_by_mail_and_by_sms(&env).await;

    let store = switchboard::store::Store::connect_lazy(&env.settings.database.url, 1).unwrap();
    let settings: (String, String, String, String, String, Option<String>) = sqlx::query_as(
        "SELECT current_setting('plan_cache_mode'), current_setting('enable_seqscan'),
                current_setting('enable_hashjoin'), current_setting('enable_mergejoin'),
                current_setting('jit'), current_setting('switchboard.placer', true)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        settings,
        ("force_generic_plan".into(), "off".into(), "off".into(), "off".into(), "off".into(), Some("on".into()))
    );

    // The desktop's session: refused, the pair has an ongoing conversation.
    let placer: Option<String> =
        sqlx::query_scalar("SELECT current_setting('switchboard.placer', true)").fetch_one(&env.pool).await.unwrap();
    assert_ne!(placer.as_deref(), Some("on"));
    let err = sqlx::query(BIND_ANA_SMS).bind(a).bind(ANA_PHONE).execute(&env.pool).await.unwrap_err();
    assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("23505"), "{err}");

    // The same row from a worker session is not checked (rolled back: the
    // worker itself never binds a pair its snapshot saw taken).
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query(BIND_ANA_SMS)
        .bind(a)
        .bind(ANA_PHONE)
        .execute(&mut *tx)
        .await
        .expect("the trigger skips worker sessions");
    tx.rollback().await.unwrap();
    assert_eq!(i1_violations(&env).await, 0, "I1");
}
