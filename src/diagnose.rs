//! Sentences for a person about what could not be reached, naming what and
//! where, never how to log in: `cannot connect to Postgres at
//! 127.0.0.1:5999: connection refused` rather than sqlx's `pool timed out
//! while waiting for an open connection`, which hides the cause.
//!
//! This opens one direct Postgres connection outside the store's pool, only
//! to find the cause of a failure the pool reported; the store stays the
//! only module that runs SQL.

use crate::failure::{Infra, Verdict};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;
use std::str::FromStr as _;
use std::time::Duration;

/// Postgres could not be reached or refused the login.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot connect to Postgres at {at}: {cause}")]
pub struct PostgresUnreachable {
    /// `host:port` (or the socket path); no user, no password.
    pub at: String,
    pub cause: String,
    /// Postgres answered and refused: the login, the certificate, the
    /// database name. The operator's to fix; waiting cannot help.
    pub refused: bool,
}

/// Where `url` points, as `host:port`, without credentials.
pub(crate) fn postgres_location(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(o) => format!("{}:{}", o.get_host(), o.get_port()),
        Err(_) => "an unparsable DATABASE_URL".to_owned(),
    }
}

/// Tries one connection to `url` within `timeout`.
pub async fn check_postgres(url: &str, timeout: Duration) -> Result<(), PostgresUnreachable> {
    let at = postgres_location(url);
    let options = PgConnectOptions::from_str(url).map_err(|e| PostgresUnreachable {
        at: at.clone(),
        cause: format!("invalid URL ({})", kind_of(&e)),
        refused: true,
    })?;
    match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => {
            let refused = crate::store::of_postgres(&e) == Verdict::Wait(Infra::Refused);
            Err(PostgresUnreachable { at, cause: cause_of(&e), refused })
        }
        Err(_) => {
            Err(PostgresUnreachable { at, cause: format!("no answer within {} s", timeout.as_secs()), refused: false })
        }
    }
}

/// A short cause for a sqlx error, without the URL it may embed.
pub(crate) fn cause_of(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io_cause(io),
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Tls(t) => format!("TLS failed: {t}"),
        sqlx::Error::PoolTimedOut => "no connection within the pool's timeout".to_owned(),
        other => kind_of(other),
    }
}

fn kind_of(e: &sqlx::Error) -> String {
    // sqlx's configuration errors can quote the URL, password included.
    match e {
        sqlx::Error::Configuration(_) => "bad configuration".to_owned(),
        other => other.to_string(),
    }
}

/// `connection refused` rather than `Connection refused (os error 111)`.
pub(crate) fn io_cause(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".to_owned(),
        ConnectionReset => "connection reset".to_owned(),
        TimedOut => "timed out".to_owned(),
        NotFound => "host or socket not found".to_owned(),
        _ => {
            let text = e.to_string();
            text.split(" (os error").next().unwrap_or(&text).to_lowercase()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_keeps_host_and_port_and_drops_the_password() {
        let at = postgres_location("postgres://admin:s3cret@db.internal:6543/switchboard");
        assert_eq!(at, "db.internal:6543");
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_as_connection_refused_with_its_address() {
        // Bind and drop: the port is then free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("postgres://postgres:topsecret@127.0.0.1:{port}/x");
        let err = check_postgres(&url, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(err.to_string(), format!("cannot connect to Postgres at 127.0.0.1:{port}: connection refused"));
        assert!(!err.to_string().contains("topsecret"));
    }
}
