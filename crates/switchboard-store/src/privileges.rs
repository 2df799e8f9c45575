//! What the worker's Postgres role needs, and nothing more: the grants
//! `switchboard grant` gives, and the check the worker makes before it
//! starts. One table serves both, so the two cannot drift apart.
//!
//! Why each: placement reads every table of the contract; it inserts
//! conversations, participants, messages, links and events; it updates
//! conversations (reopen, close on follow-up, R8's merge) and links (a
//! sibling link that becomes a follow-up); it deletes links that no
//! Message-ID calls for any more; the outbox's publisher deletes what the
//! broker has taken. `SELECT ... FOR UPDATE` needs UPDATE on the table
//! it locks, which conversations has anyway. People and their contacts
//! are the desk's: read only. No DDL, no TRUNCATE, no ownership.

use super::Store;

/// Table and the privileges the worker needs on it.
pub(crate) const TABLE_GRANTS: [(&str, &[&str]); 8] = [
    ("people", &["SELECT"]),
    ("person_contacts", &["SELECT"]),
    ("conversations", &["SELECT", "INSERT", "UPDATE"]),
    ("conversation_channels", &["SELECT", "INSERT"]),
    ("messages", &["SELECT", "INSERT"]),
    ("conversation_links", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
    ("conversation_events", &["SELECT", "INSERT"]),
    ("event_outbox", &["SELECT", "INSERT", "DELETE"]),
];

/// Sequences behind `bigserial` keys the worker inserts into.
pub(crate) const SEQUENCE_GRANTS: [&str; 2] = ["conversation_events_id_seq", "event_outbox_seq_seq"];

/// A privilege the role lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub privilege: &'static str,
    pub object: &'static str,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.privilege, self.object)
    }
}

/// Whether `role` is a plain Postgres identifier (lower case, digits,
/// underscores), so it can be written into a GRANT without quoting rules
/// an operator would have to reason about.
pub fn valid_role(role: &str) -> bool {
    let mut chars = role.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && role.len() <= 63
}

/// The statements that give `role` what the worker needs, in the database
/// `database`. `role` must pass [`valid_role`].
pub fn grant_statements(role: &str, database: &str) -> Vec<String> {
    let mut out = vec![
        format!("GRANT CONNECT ON DATABASE \"{}\" TO {role}", database.replace('"', "\"\"")),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
    ];
    for (table, privileges) in TABLE_GRANTS {
        out.push(format!("GRANT {} ON TABLE public.{table} TO {role}", privileges.join(", ")));
    }
    for sequence in SEQUENCE_GRANTS {
        out.push(format!("GRANT USAGE ON SEQUENCE public.{sequence} TO {role}"));
    }
    out
}

impl Store {
    /// What the connected role lacks of [`TABLE_GRANTS`] and
    /// [`SEQUENCE_GRANTS`]. Objects that do not exist yet are skipped: a
    /// schema behind the worker is the failure policy's `schema` wait.
    pub async fn missing_privileges(&self) -> Result<Vec<Missing>, sqlx::Error> {
        // Without USAGE on the schema every other question below fails.
        let schema: bool =
            sqlx::query_scalar("SELECT has_schema_privilege('public', 'USAGE')").fetch_one(&self.pool).await?;
        if !schema {
            return Ok(vec![Missing { privilege: "USAGE", object: "schema public" }]);
        }
        let mut missing = Vec::new();
        for (table, privileges) in TABLE_GRANTS {
            for privilege in privileges {
                let has: Option<bool> = sqlx::query_scalar(
                    "SELECT has_table_privilege(to_regclass('public.' || $1), $2) WHERE to_regclass('public.' || $1) IS NOT NULL",
                )
                .bind(table)
                .bind(privilege)
                .fetch_optional(&self.pool)
                .await?;
                if has == Some(false) {
                    missing.push(Missing { privilege, object: table });
                }
            }
        }
        for sequence in SEQUENCE_GRANTS {
            let has: Option<bool> = sqlx::query_scalar(
                "SELECT has_sequence_privilege(to_regclass('public.' || $1), 'USAGE') WHERE to_regclass('public.' || $1) IS NOT NULL",
            )
            .bind(sequence)
            .fetch_optional(&self.pool)
            .await?;
            if has == Some(false) {
                missing.push(Missing { privilege: "USAGE", object: sequence });
            }
        }
        Ok(missing)
    }

    /// Gives `role` what the worker needs; run as the schema's owner.
    pub async fn grant(&self, role: &str) -> Result<Vec<String>, sqlx::Error> {
        let database: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&self.pool).await?;
        let statements = grant_statements(role, &database);
        let mut tx = self.pool.begin().await?;
        for statement in &statements {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(statements)
    }

    /// The role this store connects as.
    pub async fn current_role(&self) -> Result<String, sqlx::Error> {
        sqlx::query_scalar("SELECT current_user::text").fetch_one(&self.pool).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_taken_as_roles() {
        assert!(valid_role("switchboard_worker"));
        assert!(valid_role("_w2"));
        assert!(!valid_role(""));
        assert!(!valid_role("Worker"));
        assert!(!valid_role("w; DROP TABLE messages"));
        assert!(!valid_role("w\"x"));
        assert!(!valid_role(&"w".repeat(64)));
    }

    #[test]
    fn the_grants_are_exactly_what_placement_needs() {
        assert_eq!(
            grant_statements("switchboard_worker", "desk"),
            [
                "GRANT CONNECT ON DATABASE \"desk\" TO switchboard_worker",
                "GRANT USAGE ON SCHEMA public TO switchboard_worker",
                "GRANT SELECT ON TABLE public.people TO switchboard_worker",
                "GRANT SELECT ON TABLE public.person_contacts TO switchboard_worker",
                "GRANT SELECT, INSERT, UPDATE ON TABLE public.conversations TO switchboard_worker",
                "GRANT SELECT, INSERT ON TABLE public.conversation_channels TO switchboard_worker",
                "GRANT SELECT, INSERT ON TABLE public.messages TO switchboard_worker",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.conversation_links TO switchboard_worker",
                "GRANT SELECT, INSERT ON TABLE public.conversation_events TO switchboard_worker",
                "GRANT SELECT, INSERT, DELETE ON TABLE public.event_outbox TO switchboard_worker",
                "GRANT USAGE ON SEQUENCE public.conversation_events_id_seq TO switchboard_worker",
                "GRANT USAGE ON SEQUENCE public.event_outbox_seq_seq TO switchboard_worker",
            ]
        );
        // A database name is quoted, quotes doubled.
        assert!(grant_statements("w", "a\"b")[0].contains("\"a\"\"b\""));
    }
}
