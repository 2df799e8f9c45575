//! Polls the broker for what the lag metric needs: each assigned
//! partition's high watermark and the group's committed offset. On Apache
//! Kafka both are exact, so lag is what `kafka-consumer-groups.sh
//! --describe` prints. It runs on its own client (see
//! [`crate::kafka::GroupOffsets`]), so a slow answer never holds the consumer.

use super::Telemetry;
use crate::config::KafkaSettings;
use crate::kafka::{GroupOffsets, PartitionKey};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Polls every `interval` until `stop` turns true. `assignment` reads the
/// member's current partitions.
pub(crate) async fn poll(
    settings: KafkaSettings,
    assignment: impl Fn() -> Vec<PartitionKey> + Send + Sync + 'static,
    telemetry: Arc<Telemetry>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let assignment = Arc::new(assignment);
    let client = match GroupOffsets::new(&settings, &settings.group_id) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            telemetry.broker_contact(Err(e.to_string()));
            return;
        }
    };
    let inputs: Vec<String> = settings.topics.inputs().iter().map(|t| (*t).to_owned()).collect();
    loop {
        let (client, telemetry2, assignment) = (client.clone(), telemetry.clone(), assignment.clone());
        let inputs = inputs.clone();
        let _ = tokio::task::spawn_blocking(move || poll_once(&client, &telemetry2, &assignment(), &inputs)).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

fn poll_once(client: &GroupOffsets, telemetry: &Telemetry, assigned: &[PartitionKey], inputs: &[String]) {
    if assigned.is_empty() {
        // Nothing to measure; still learn whether the broker answers.
        let topics: Vec<&str> = inputs.iter().map(String::as_str).collect();
        telemetry.broker_contact(client.partitions(&topics).map(|_| ()).map_err(|e| e.to_string()));
        telemetry.polled(assigned, &[]);
        return;
    }
    let committed = match client.committed(assigned) {
        Ok(c) => c,
        Err(e) => {
            telemetry.broker_contact(Err(e.to_string()));
            return;
        }
    };
    let mut offsets = Vec::with_capacity(assigned.len());
    for key in assigned {
        match client.watermarks(key) {
            Ok((_, high)) => offsets.push((key.clone(), Some(high), committed.get(key).copied().flatten())),
            Err(e) => {
                telemetry.broker_contact(Err(e.to_string()));
                return;
            }
        }
    }
    telemetry.broker_contact(Ok(()));
    telemetry.polled(assigned, &offsets);
}
