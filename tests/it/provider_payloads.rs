//! Real provider payloads (`../shared/fixtures/webhooks/`, from public SDKs'
//! test data) through the broker and Postgres: what a customer sent is
//! stored (coordinates, fallback urls and titles, Infobip content lists,
//! `cleanText`), notices are skipped under their own name, and an unsent
//! Messenger message never reopens a conversation.

use crate::agent::{set_status, status_of};
use crate::harness::TestEnv;
use switchboard_load::sample::{binary, SampleRecord};

fn real(file: &str) -> SampleRecord {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/webhooks").join(file);
    let payload = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (channel, ce_type) =
        if file.starts_with("messenger/") { ("messenger", "messenger.received") } else { ("sms", "sms.received") };
    binary(channel, ce_type, file, "application/json", &[], &payload)
}

async fn details(env: &TestEnv, external_id: &str) -> serde_json::Value {
    sqlx::query_scalar("SELECT details FROM messages WHERE external_id = $1")
        .bind(external_id)
        .fetch_one(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("{external_id}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_payloads_keep_their_content_and_an_unsent_message_never_reopens() {
    let env = TestEnv::new(1).await;
    env.publish(&real("messenger/restfb/messaging-message-basic.json")).await;
    env.run_to_end().await;
    let conversation: uuid::Uuid = sqlx::query_scalar(
        "SELECT conversation_id FROM messages WHERE external_id = 'mid.1457764197618:41d102a3e1ae206a38'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    set_status(&env.pool, conversation, "solved").await;

    for file in [
        "messenger/restfb/messaging-message-isdeleted.json",
        "messenger/restfb/standby-message-basic-echo.json",
        "messenger/restfb/messaging-message-location-attachment.json",
        "messenger/courier/fallback.json",
        "sms/infobip/courier-helloMsg.json",
        "sms/infobip/courier-missingText.json",
    ] {
        env.publish(&real(file)).await;
    }
    let stats = env.run_to_end().await;
    assert_eq!(stats.records_dead_lettered, 0, "{:?}", stats.dead_letters_by_reason);
    assert_eq!(stats.skipped_entries.get("deleted"), Some(&1), "{:?}", stats.skipped_entries);
    assert_eq!(stats.skipped_entries.get("standby"), Some(&1), "{:?}", stats.skipped_entries);
    assert_eq!(env.count("SELECT count(*) FROM messages WHERE external_id = 'message_id'").await, 0);

    // The location reply reopened the conversation (a real message); the
    // deleted notice before it did not, and wrote nothing.
    assert_eq!(
        env.count("SELECT count(*) FROM conversation_events WHERE kind = 'reopened' AND message_id IS NOT NULL").await,
        1
    );
    let location = details(&env, "mid.1458696618141:b4ef9d19ec21086067").await;
    assert_eq!(location["attachments"][0]["coordinates"], serde_json::json!({"lat": 12.34, "long": 43.21}));
    let fallback = details(&env, "external_id").await;
    assert_eq!(fallback["attachments"][0]["url"], "My Documents/foo.doc");
    assert_eq!(fallback["attachments"][0]["title"], "Foo");
    let body = |id: &'static str| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT body_text FROM messages WHERE external_id = $1 AND channel = 'sms'")
                .bind(id)
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    };
    // Both Infobip files reuse one messageId, so the second is a duplicate:
    // the content list came first.
    assert_eq!(body("0191e180-7d60-7000-aded-7d8b151cbd5b").await, ["This is message text"]);
    let sms = sqlx::query_scalar::<_, serde_json::Value>(
        "SELECT details FROM messages WHERE external_id = '0191e180-7d60-7000-aded-7d8b151cbd5b'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(sms["attachments"][0]["url"], "https://examplelink.com/123456");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsent_message_alone_leaves_a_solved_conversation_solved() {
    let env = TestEnv::new(1).await;
    env.publish(&real("messenger/restfb/messaging-message-basic.json")).await;
    env.run_to_end().await;
    let conversation: uuid::Uuid =
        sqlx::query_scalar("SELECT conversation_id FROM messages LIMIT 1").fetch_one(&env.pool).await.unwrap();
    set_status(&env.pool, conversation, "solved").await;
    env.publish(&real("messenger/restfb/messaging-message-isdeleted.json")).await;
    let stats = env.run_to_end().await;
    assert_eq!(stats.records_skipped, 1);
    assert_eq!(status_of(&env.pool, conversation).await, "solved");
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_infobip_text_stores_its_clean_text() {
    let env = TestEnv::new(1).await;
    env.publish(&real("sms/infobip/courier-missingText.json")).await;
    env.run_to_end().await;
    let text: String = sqlx::query_scalar("SELECT body_text FROM messages").fetch_one(&env.pool).await.unwrap();
    assert_eq!(text, "Correct answer is Paris");
}
