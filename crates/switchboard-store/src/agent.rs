//! The agent desktop's own statements (contract section 4), for load tests
//! that act as the desk while traffic flows (`switchboard-load traffic --agents`).
//! Each action picks a random ongoing conversation by a random point in the
//! id space (an index probe, not a scan) and runs the desktop's SQL as the
//! contract writes it.

use super::Store;
use uuid::Uuid;

/// One thing an agent does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentAction {
    SetWaiting,
    SetSolved,
    Close,
    /// Merge one ongoing conversation into another.
    Merge,
    /// Bind a new pair to an ongoing conversation.
    AddChannel,
}

impl AgentAction {
    pub const ALL: [AgentAction; 5] = [
        AgentAction::SetWaiting,
        AgentAction::SetSolved,
        AgentAction::Close,
        AgentAction::Merge,
        AgentAction::AddChannel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentAction::SetWaiting => "waiting",
            AgentAction::SetSolved => "solved",
            AgentAction::Close => "closed",
            AgentAction::Merge => "merged",
            AgentAction::AddChannel => "channel_added",
        }
    }
}

/// The first ongoing conversation from an id on, other than one.
const PICK: &str = "SELECT id FROM conversations
                    WHERE id >= $1 AND status <> 'closed' AND merged_into IS NULL AND id IS DISTINCT FROM $2
                    ORDER BY id LIMIT 1";

impl Store {
    /// An ongoing conversation at or after `point` in the id space (wrapping
    /// around), or `None` when there is none.
    async fn ongoing_near(&self, point: u128, not: Option<Uuid>) -> Result<Option<Uuid>, sqlx::Error> {
        let (low, high): (Option<Uuid>, Option<Uuid>) =
            // min() and max() take no uuid before Postgres 16; the primary key answers both ends.
            sqlx::query_as(
                "SELECT (SELECT id FROM conversations ORDER BY id LIMIT 1),
                        (SELECT id FROM conversations ORDER BY id DESC LIMIT 1)",
            )
            .fetch_one(&self.pool)
            .await?;
        let (Some(low), Some(high)) = (low, high) else { return Ok(None) };
        let (low, high) = (low.as_u128(), high.as_u128());
        let at = Uuid::from_u128(low + point % (high - low).saturating_add(1).max(1));
        let found: Option<Uuid> = sqlx::query_scalar(PICK).bind(at).bind(not).fetch_optional(&self.pool).await?;
        match found {
            Some(id) => Ok(Some(id)),
            None => sqlx::query_scalar(PICK).bind(Uuid::nil()).bind(not).fetch_optional(&self.pool).await,
        }
    }

    /// Does `action` to a conversation picked from `point` (and `other` for a
    /// merge's target); `n` makes an added pair new. Whether it found a
    /// conversation to act on.
    pub async fn agent_act(&self, action: AgentAction, point: u128, other: u128, n: u64) -> Result<bool, sqlx::Error> {
        let Some(id) = self.ongoing_near(point, None).await? else { return Ok(false) };
        match action {
            AgentAction::SetWaiting | AgentAction::SetSolved | AgentAction::Close => {
                let status = action.as_str();
                sqlx::query(
                    "UPDATE conversations SET status = $2, closed_at = CASE WHEN $2 = 'closed' THEN now() END,
                     updated_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(status)
                .execute(&self.pool)
                .await?;
            }
            AgentAction::Merge => {
                let Some(into) = self.ongoing_near(other, Some(id)).await? else { return Ok(false) };
                sqlx::query(
                    "UPDATE conversations SET merged_into = $2, status = 'closed', closed_at = now(), updated_at = now()
                     WHERE id = $1",
                )
                .bind(id)
                .bind(into)
                .execute(&self.pool)
                .await?;
            }
            AgentAction::AddChannel => {
                // A pair nobody else uses: the desk adds the customer's new
                // phone number.
                sqlx::query(
                    "INSERT INTO conversation_channels (conversation_id, channel, endpoint, contact) VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind("sms")
                .bind("80099")
                .bind(format!("99{n:010}"))
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(true)
    }
}
