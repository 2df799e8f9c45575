//! What the worker checks before it joins its group: that Postgres takes
//! its login and its role has the grants placement needs, and that the
//! broker takes its login, is trusted, and allows its topics and group.
//!
//! A refusal is a misconfiguration: it is named once, with what to do, and
//! `run` exits non-zero before it has read a record, so nothing can be
//! dead-lettered because of it. A service that does not answer is not a
//! misconfiguration: the worker says so and starts, and waits for it as
//! it always has (docs/reliability.md, the failure policy). A grant or ACL
//! taken away later is the failure policy's `refused` wait, not this.

use crate::config::Settings;
use crate::diagnose;
use crate::kafka::{self, Access, Probed, Refusal};
use crate::store::privileges::Missing;
use crate::store::Store;
use std::time::Duration;

/// How long each service is given to answer before the worker starts
/// anyway and waits for it.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Why the worker will not start.
#[derive(Debug, thiserror::Error)]
pub enum Misconfigured {
    #[error(
        "Postgres at {at} refused the worker: {cause}. \
         Check DATABASE_URL: its user and password, sslmode and sslrootcert, and the database name"
    )]
    PostgresRefused { at: String, cause: String },
    #[error(
        "the Postgres role {role} lacks {list}. As the schema's owner, run `switchboard grant --role {role}` \
         (docs/operations.md, \"Database roles\")"
    )]
    Grants { role: String, list: String },
    #[error(transparent)]
    Kafka(#[from] Refusal),
}

/// Checks both services; `Err` when either refuses the worker.
pub async fn check(settings: &Settings) -> Result<(), Misconfigured> {
    check_postgres(settings).await?;
    check_kafka(settings).await
}

async fn check_postgres(settings: &Settings) -> Result<(), Misconfigured> {
    let url = &settings.database.url;
    match diagnose::check_postgres(url, ANSWER_WITHIN).await {
        Ok(()) => {}
        Err(e) if e.refused => return Err(Misconfigured::PostgresRefused { at: e.at, cause: e.cause }),
        Err(e) => {
            tracing::warn!(cause = %e, "Postgres does not answer yet; the worker starts and waits for it.");
            return Ok(());
        }
    }
    let check = async {
        let store = Store::connect_lazy(url, 1)?;
        let missing = store.missing_privileges().await?;
        let role = if missing.is_empty() { String::new() } else { store.current_role().await? };
        store.pool().close().await;
        Ok::<_, sqlx::Error>((role, missing))
    };
    match check.await {
        Ok((_, missing)) if missing.is_empty() => Ok(()),
        Ok((role, missing)) => Err(Misconfigured::Grants { role, list: list(&missing) }),
        Err(e) => {
            tracing::warn!(cause = %diagnose::cause_of(&e), "The worker's grants could not be checked; it starts anyway.");
            Ok(())
        }
    }
}

/// "SELECT, INSERT on messages; USAGE on event_outbox_seq_seq", in the
/// order of the grants.
fn list(missing: &[Missing]) -> String {
    let mut objects: Vec<(&str, Vec<&str>)> = Vec::new();
    for m in missing {
        match objects.iter_mut().find(|(o, _)| *o == m.object) {
            Some((_, privileges)) => privileges.push(m.privilege),
            None => objects.push((m.object, vec![m.privilege])),
        }
    }
    objects.iter().map(|(o, p)| format!("{} on {o}", p.join(", "))).collect::<Vec<_>>().join("; ")
}

async fn check_kafka(settings: &Settings) -> Result<(), Misconfigured> {
    let kafka = settings.kafka.clone();
    let topics = kafka.topics.clone();
    // The events topic is asked for here when the worker reaches it with
    // the same client settings; a separate events cluster is asked by the
    // publisher's own errors (its outbox alarm).
    let events_here = settings.events.enabled && settings.events_kafka().bootstrap_servers == kafka.bootstrap_servers;
    let probed = tokio::task::spawn_blocking(move || {
        let read = topics.inputs();
        let mut write = vec![topics.dlq.as_str()];
        if events_here {
            write.push(topics.events.as_str());
        }
        let access = Access { read: &read, write: &write, group: &kafka.group_id };
        kafka::preflight(&kafka, &access, ANSWER_WITHIN)
    })
    .await
    .map_err(|e| Refusal::Client(format!("the preflight check panicked: {e}")))??;
    if let Probed::Unreachable(cause) = probed {
        tracing::warn!(%cause, servers = %settings.kafka.bootstrap_servers, "The Kafka broker does not answer yet; the worker starts and waits for it.");
    }
    Ok(())
}
