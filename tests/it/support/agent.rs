//! The agent desktop's actions, with the exact SQL of contract section 4,
//! and small builders for the records the rule tests publish.

use crate::harness::TestEnv;
use sqlx::PgPool;
use switchboard_load::sample::{binary, email, SampleRecord};
use uuid::Uuid;

pub async fn set_status(pool: &PgPool, id: Uuid, status: &str) {
    sqlx::query("UPDATE conversations SET status = $2, closed_at = CASE WHEN $2 = 'closed' THEN now() END, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(pool)
        .await
        .expect("change status");
}

pub async fn merge(pool: &PgPool, from: Uuid, into: Uuid) {
    sqlx::query("UPDATE conversations SET merged_into = $2, status = 'closed', closed_at = now(), updated_at = now() WHERE id = $1")
        .bind(from)
        .bind(into)
        .execute(pool)
        .await
        .expect("merge");
}

pub async fn add_channel(pool: &PgPool, id: Uuid, channel: &str, endpoint: &str, contact: &str) {
    sqlx::query(
        "INSERT INTO conversation_channels (conversation_id, channel, endpoint, contact) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(channel)
    .bind(endpoint)
    .bind(contact)
    .execute(pool)
    .await
    .expect("add channel");
}

pub async fn set_queue_priority_form(pool: &PgPool, id: Uuid) {
    sqlx::query("UPDATE conversations SET queue = 'returns', priority = 'high', form = '{\"form\":\"damage\",\"fields\":{\"order\":\"1182\"}}' WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .expect("set queue, priority, form");
}

/// The agent desktop's reply: an outbound row in the conversation.
pub async fn agent_reply(pool: &PgPool, conversation: Uuid, endpoint: &str, contact: &str, external_id: &str) {
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, channel, direction, endpoint, contact, external_id, body_text, received_at)
         VALUES ($1, $2, 'email', 'outbound', $3, $4, $5, 'We are on it.', now())",
    )
    .bind(Uuid::new_v4())
    .bind(conversation)
    .bind(endpoint)
    .bind(contact)
    .bind(external_id)
    .execute(pool)
    .await
    .expect("agent reply");
}

/// The conversation a message landed in.
/// An agent's open transaction holding `conversation` `FOR UPDATE`, as the
/// desktop's editing does; the lock lasts until it commits or is dropped.
pub async fn hold_row(pool: &PgPool, conversation: Uuid) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut agent = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE")
        .bind(conversation)
        .execute(&mut *agent)
        .await
        .unwrap();
    agent
}

pub async fn conversation_of(pool: &PgPool, external_id: &str, endpoint: &str) -> Uuid {
    sqlx::query_scalar("SELECT conversation_id FROM messages WHERE external_id = $1 AND endpoint = $2")
        .bind(external_id)
        .bind(endpoint)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("message {external_id} at {endpoint}: {e}"))
}

pub async fn status_of(pool: &PgPool, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM conversations WHERE id = $1").bind(id).fetch_one(pool).await.expect("status")
}

/// An email from `from` to `inbox`, optionally replying, with extra header lines.
pub fn mail(
    inbox: &str,
    id: &str,
    from: &str,
    in_reply_to: Option<&str>,
    references: &[&str],
    extra: &str,
) -> SampleRecord {
    let mut raw = format!("From: Customer <{from}>\r\nTo: {inbox}\r\nSubject: About my order\r\nMessage-ID: <{id}>\r\nDate: Wed, 25 Nov 2026 08:00:00 +0100\r\n");
    if let Some(irt) = in_reply_to {
        raw.push_str(&format!("In-Reply-To: <{irt}>\r\n"));
    }
    if !references.is_empty() {
        let refs: Vec<String> = references.iter().map(|r| format!("<{r}>")).collect();
        raw.push_str(&format!("References: {}\r\n", refs.join(" ")));
    }
    raw.push_str(extra);
    raw.push_str("\r\nHello, any news?\r\n");
    email(inbox, &format!("evt-{id}-{inbox}"), &raw)
}

/// One Infobip SMS.
pub fn sms(id: &str, from: &str, to: &str, text: &str) -> SampleRecord {
    let body = format!(
        r#"{{"results":[{{"messageId":"{id}","from":"{from}","to":"{to}","text":"{text}","receivedAt":"2026-11-25T07:00:00.000+0000","smsCount":1}}],"messageCount":1,"pendingMessageCount":0}}"#
    );
    binary("sms", "sms.received", &format!("evt-{id}"), "application/json", &[], body.as_bytes())
}

/// One Messenger message, optionally replying to `reply_to`.
pub fn messenger(mid: &str, psid: &str, page: &str, reply_to: Option<&str>) -> SampleRecord {
    let reply = reply_to.map(|r| format!(r#","reply_to":{{"mid":"{r}"}}"#)).unwrap_or_default();
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"{page}","time":1764054000000,"messaging":[{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"{page}"}},"timestamp":1764054000000,"message":{{"mid":"{mid}","text":"hi"{reply}}}}}]}}]}}"#
    );
    binary("messenger", "messenger.received", &format!("evt-{mid}"), "application/json", &[], body.as_bytes())
}

/// R7 checked in SQL: (holders of an email copy not linked to the main
/// holder, either way round, since a link and its reverse are one link;
/// `related` links made for siblings that no sibling set explains).
/// Both are 0 when I5 holds. Links R1r made (`sibling_only` false) are
/// explained by the replies, not by copies.
pub async fn sibling_link_errors(env: &TestEnv) -> (i64, i64) {
    const SETS: &str = "WITH holders AS (
          SELECT DISTINCT m.external_id, c.id, c.created_at FROM messages m JOIN conversations c ON c.id = m.conversation_id
          WHERE m.channel = 'email' AND m.direction = 'inbound'
        ), main AS (
          SELECT DISTINCT ON (external_id) external_id, id FROM holders ORDER BY external_id, created_at, id
        )";
    let missing = env
        .count(&format!(
            "{SETS} SELECT count(*) FROM holders h JOIN main USING (external_id)
             WHERE h.id <> main.id AND NOT EXISTS (SELECT 1 FROM conversation_links l
               WHERE l.kind = 'related' AND ((l.conversation_id, l.related_conversation_id) = (h.id, main.id)
                                             OR (l.conversation_id, l.related_conversation_id) = (main.id, h.id)))"
        ))
        .await;
    let extra = env
        .count(&format!(
            "{SETS} SELECT count(*) FROM conversation_links l WHERE l.kind = 'related' AND l.sibling_only AND NOT EXISTS (
               SELECT 1 FROM holders h JOIN main USING (external_id)
               WHERE h.id = l.conversation_id AND main.id = l.related_conversation_id AND h.id <> main.id)"
        ))
        .await;
    (missing, extra)
}

/// Every `related` link, as (later conversation, main conversation).
pub async fn related(env: &TestEnv) -> Vec<(Uuid, Uuid)> {
    sqlx::query_as(
        "SELECT conversation_id, related_conversation_id FROM conversation_links WHERE kind = 'related' ORDER BY 1, 2",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}
