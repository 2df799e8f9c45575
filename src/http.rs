//! The operators' HTTP endpoint, served while `run` runs: `/metrics`
//! (Prometheus text format), `/healthz` (liveness) and `/readyz`
//! (readiness, with the reasons when not ready). The only module that
//! serves HTTP; it reads [`Telemetry`] and asks Postgres one `SELECT 1`
//! per readiness probe.

use crate::store::Store;
use crate::telemetry::{Readiness, Telemetry};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The endpoint could not listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for the metrics and health endpoint: {source} (set SWITCHBOARD_HTTP_ADDR to another host:port, or to off)")]
pub(crate) struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

#[derive(Clone)]
struct AppState {
    telemetry: Arc<Telemetry>,
    store: Store,
    /// To diagnose a failed ping; never printed.
    database_url: Arc<str>,
}

/// A bound endpoint, ready to serve.
pub(crate) struct Endpoint {
    listener: tokio::net::TcpListener,
    app: Router,
}

impl Endpoint {
    /// Binds `addr` now, so a taken port fails the start rather than later.
    pub(crate) async fn bind(
        addr: SocketAddr,
        telemetry: Arc<Telemetry>,
        store: Store,
        database_url: &str,
    ) -> Result<Endpoint, BindError> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| BindError { addr, source })?;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(AppState { telemetry, store, database_url: database_url.into() });
        Ok(Endpoint { listener, app })
    }

    /// The address actually bound (port 0 picks one).
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` resolves.
    pub(crate) async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        if let Err(e) = axum::serve(self.listener, self.app).with_graceful_shutdown(shutdown).await {
            tracing::warn!(error = %e, "The metrics and health endpoint stopped.");
        }
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.telemetry.render())
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    match s.telemetry.health() {
        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    // The pool only says that it timed out (and waits longer than a probe's
    // patience); on failure, one direct attempt finds out why.
    let postgres = match tokio::time::timeout(Duration::from_secs(1), s.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        _ => match crate::diagnose::check_postgres(&s.database_url, Duration::from_secs(2)).await {
            Err(e) => Err(e.to_string()),
            Ok(()) => Err("Postgres: reachable, but the connection pool has no free connection".to_owned()),
        },
    };
    match s.telemetry.readiness(postgres) {
        Readiness::Ready => (StatusCode::OK, "ready\n".to_owned()),
        Readiness::NotReady(reasons) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", reasons.join("; ")))
        }
    }
}

/// A minimal HTTP GET for the load generator's plot and for tests: one
/// request per connection (`Connection: close`), body read to the end.
/// Returns the status code and the body.
pub async fn fetch(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "chunked responses are not supported"));
    }
    Ok((status, body.to_owned()))
}

/// The value of one series in a Prometheus text body, e.g.
/// `switchboard_messages_placed_total{rule="r4_new"}`; `None` when absent.
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The sum of every series of a family (all label sets).
pub fn family_sum(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{') | Some(b' ')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
