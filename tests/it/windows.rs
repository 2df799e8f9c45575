//! R4's follow-up window runs from the close to when the message was
//! received (Infobip `receivedAt`, Messenger `timestamp`), not to when a
//! backlog is processed; an expired window starts a plain conversation.

use crate::agent::*;
use crate::harness::TestEnv;
use chrono::{DateTime, Duration, Utc};
use switchboard_load::sample::{binary, SampleRecord};
use uuid::Uuid;

fn infobip(id: &str, from: &str, received: DateTime<Utc>) -> SampleRecord {
    let at = received.format("%Y-%m-%dT%H:%M:%S%.3f+0000");
    let body = format!(
        r#"{{"results":[{{"messageId":"{id}","from":"{from}","to":"800","text":"still there?","receivedAt":"{at}","smsCount":1}}],"messageCount":1,"pendingMessageCount":0}}"#
    );
    binary("sms", "sms.received", &format!("evt-{id}"), "application/json", &[], body.as_bytes())
}

fn messenger_at(mid: &str, psid: &str, received: DateTime<Utc>) -> SampleRecord {
    let ms = received.timestamp_millis();
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"900","time":{ms},"messaging":[{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"900"}},"timestamp":{ms},"message":{{"mid":"{mid}","text":"hi"}}}}]}}]}}"#
    );
    binary("messenger", "messenger.received", &format!("evt-{mid}"), "application/json", &[], body.as_bytes())
}

/// Closes `id` as the desktop does, then dates the close `ago` back.
async fn closed_ago(env: &TestEnv, id: Uuid, ago: Duration) {
    set_status(&env.pool, id, "closed").await;
    sqlx::query("UPDATE conversations SET closed_at = now() - make_interval(secs => $2) WHERE id = $1")
        .bind(id)
        .bind(ago.num_seconds() as f64)
        .execute(&env.pool)
        .await
        .unwrap();
}

async fn follow_up_of(env: &TestEnv, id: Uuid) -> Option<Uuid> {
    sqlx::query_scalar(
        "SELECT related_conversation_id FROM conversation_links WHERE conversation_id = $1 AND kind = 'follow_up'",
    )
    .bind(id)
    .fetch_optional(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_is_measured_to_the_messages_receive_time_and_an_expired_one_starts_fresh() {
    let env = TestEnv::with(1, |s| {
        s.placement.sms_follow_up_window = std::time::Duration::from_secs(3600);
        s.placement.messenger_follow_up_window = std::time::Duration::from_secs(3600);
    })
    .await;
    let now = Utc::now();
    // Three customers, each with a conversation closed three hours ago.
    env.publish(&infobip("a1", "385911", now - Duration::hours(5))).await;
    env.publish(&infobip("b1", "385922", now - Duration::hours(5))).await;
    env.publish(&messenger_at("m_c1", "7001", now - Duration::hours(5))).await;
    env.run_to_end().await;
    let (a, b, c) = (
        conversation_of(&env.pool, "a1", "800").await,
        conversation_of(&env.pool, "b1", "800").await,
        conversation_of(&env.pool, "m_c1", "900").await,
    );
    for id in [a, b, c] {
        closed_ago(&env, id, Duration::hours(3)).await;
    }

    // A backlog: A and C wrote 30 minutes after their close (within the
    // hour), B two hours after it (expired); all processed only now.
    env.publish(&infobip("a2", "385911", now - Duration::minutes(150))).await;
    env.publish(&infobip("b2", "385922", now - Duration::hours(1))).await;
    env.publish(&messenger_at("m_c2", "7001", now - Duration::minutes(150))).await;
    let stats = env.run_to_end().await;
    assert_eq!(stats.messages_by_rule.get("r4_new_follow_up"), Some(&2), "{stats:?}");

    let a2 = conversation_of(&env.pool, "a2", "800").await;
    assert_ne!(a2, a);
    assert_eq!(follow_up_of(&env, a2).await, Some(a), "SMS received within the window");
    let c2 = conversation_of(&env.pool, "m_c2", "900").await;
    assert_eq!(follow_up_of(&env, c2).await, Some(c), "Messenger timestamp within the window");
    let b2 = conversation_of(&env.pool, "b2", "800").await;
    assert_ne!(b2, b);
    assert_eq!(follow_up_of(&env, b2).await, None, "received after the window expired: a plain new conversation");
    assert_eq!(env.count("SELECT count(*) FROM conversation_events WHERE kind = 'follow_up_started'").await, 2);
}
