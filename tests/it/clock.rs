//! The batch's clock is read after its locks: a conversation created by a
//! batch that waited is stamped later than everything committed before it
//! became visible, so `created_at` order is visibility order (R4's latest
//! conversation of a pair, R7's earliest created holder).

use crate::agent::*;
use crate::agent_race::until_a_session_waits_for_an_advisory_lock;
use crate::harness::TestEnv;
use chrono::{DateTime, Utc};
use std::time::Duration;
use switchboard::worker::{self, Mode};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_created_after_a_lock_wait_is_stamped_after_what_committed_meanwhile() {
    let env = TestEnv::new(1).await;
    // Another session holds the pair's lock (as a worker's batch or an
    // agent's add-channel would) while the worker's batch for the pair starts.
    let mut holder = env.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(switchboard_pair_key('sms', '800', '385916242493'))")
        .execute(&mut *holder)
        .await
        .unwrap();
    env.publish(&sms("s1", "+385 91 624 2493", "800", "hello")).await;
    let settings = env.settings.clone();
    let run = tokio::spawn(async move { worker::run(&settings, Mode::StopAtEnd, std::future::pending()).await });
    until_a_session_waits_for_an_advisory_lock(&env).await;

    // While the batch waits, the desktop creates a conversation and commits.
    let desk = Uuid::new_v4();
    sqlx::query("INSERT INTO conversations (id, topic) VALUES ($1, 'Created at the desk')")
        .bind(desk)
        .execute(&mut *holder)
        .await
        .unwrap();
    holder.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(120), run).await.expect("the worker ends").unwrap().unwrap();

    let created = |id: Uuid| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_scalar::<_, DateTime<Utc>>("SELECT created_at FROM conversations WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let worker_conv = conversation_of(&env.pool, "s1", "800").await;
    let (desk_at, worker_at) = (created(desk).await, created(worker_conv).await);
    assert!(worker_at > desk_at, "visible later, so created later: the desk's {desk_at} vs the worker's {worker_at}");
}
