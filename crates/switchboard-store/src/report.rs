//! Read-only summaries of the store for operators and the demo.

use super::Store;
use sqlx::Row;
use std::fmt::Write as _;

impl Store {
    /// A plain-text table of every conversation: pair, status, topic,
    /// messages, and links; then the totals.
    pub async fn report(&self) -> Result<String, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT c.id, c.status, c.topic, c.origin_channel, c.origin_endpoint, c.origin_contact,
                    (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS messages,
                    (SELECT string_agg(l.kind || ' -> ' || right(l.related_conversation_id::text, 8), ', ')
                       FROM conversation_links l WHERE l.conversation_id = c.id) AS links
             FROM conversations c ORDER BY c.created_at, c.id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<8}  {:<9}  {:<7}  {:<44}  {:>4}  links / topic",
            "conv", "channel", "status", "endpoint <- contact", "msgs"
        );
        for r in &rows {
            let id: uuid::Uuid = r.get("id");
            // Conversations the agent desktop creates may have no origin pair
            // (contract section 2 leaves the columns nullable): shown as "-".
            let text = |column: &str| r.get::<Option<String>, _>(column).unwrap_or_else(|| "-".to_owned());
            let pair = format!("{} <- {}", text("origin_endpoint"), text("origin_contact"));
            let links: Option<String> = r.get("links");
            let _ = writeln!(
                out,
                "{:<8}  {:<9}  {:<7}  {:<44}  {:>4}  {}{}",
                &id.to_string()[28..],
                text("origin_channel"),
                r.get::<String, _>("status"),
                pair,
                r.get::<i64, _>("messages"),
                links.map(|l| format!("[{l}] ")).unwrap_or_default(),
                r.get::<String, _>("topic"),
            );
        }
        let totals = sqlx::query(
            "SELECT (SELECT count(*) FROM conversations) AS c, (SELECT count(*) FROM messages) AS m,
                    (SELECT count(*) FROM conversation_links) AS l, (SELECT count(*) FROM conversation_events) AS e",
        )
        .fetch_one(self.pool())
        .await?;
        let _ = writeln!(
            out,
            "{} conversations, {} messages, {} links, {} events",
            totals.get::<i64, _>("c"),
            totals.get::<i64, _>("m"),
            totals.get::<i64, _>("l"),
            totals.get::<i64, _>("e")
        );
        Ok(out)
    }
}
