//! Starts and stops what runs beside the worker for operators: the HTTP
//! endpoint and the lag poller. The worker makes one call to start them and
//! one to stop them.
//!
//! It lives outside both [`crate::telemetry`] and [`crate::http`] because it
//! wires the two together: `http` reads telemetry, telemetry knows nothing of
//! HTTP, and neither imports this module.

use crate::config::Settings;
use crate::http::Endpoint;
use crate::kafka::{Consumer, Source as _};
use crate::stats::Stats;
use crate::store::Store;
use crate::telemetry::{lag, Telemetry};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The running endpoint and poller.
pub(crate) struct Sidecar {
    pub telemetry: Arc<Telemetry>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sidecar {
    /// Binds the endpoint (a taken port is an error now, not later) and
    /// starts polling the broker for lag.
    pub(crate) async fn start(
        settings: &Settings,
        stats: Arc<Stats>,
        store: Store,
        consumer: Arc<Consumer>,
    ) -> anyhow::Result<Sidecar> {
        let telemetry = Telemetry::new(stats, settings.http.stuck_after);
        // The worker starts while Postgres is down and waits for it; say why
        // in words at once, as the pool's own errors only say it timed out.
        let url = settings.database.url.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::diagnose::check_postgres(&url, std::time::Duration::from_secs(5)).await {
                tracing::warn!(postgres = %e.at, cause = %e.cause, "{e}; batches wait until it answers.");
            }
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(listen) = settings.http.listen_addr()? {
            let endpoint = Endpoint::bind(listen, telemetry.clone(), store, &settings.database.url).await?;
            // The bound address, which differs from the configured one for port 0.
            let addr: Option<SocketAddr> = endpoint.local_addr();
            tracing::info!(addr = %addr.unwrap_or(listen), "Serving /metrics, /healthz and /readyz.");
            let mut rx = stop_rx.clone();
            tasks.push(tokio::spawn(endpoint.serve(async move {
                let _ = rx.wait_for(|s| *s).await;
            })));
        }
        tasks.push(tokio::spawn(lag::poll(
            settings.kafka.clone(),
            move || consumer.assignment().into_iter().collect(),
            telemetry.clone(),
            settings.http.poll_interval,
            stop_rx,
        )));
        Ok(Sidecar { telemetry, stop, tasks })
    }

    /// Stops serving and polling, and waits for both.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
