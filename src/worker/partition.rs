//! One task per assigned partition: it drains the partition's queue in
//! batches, runs each through the [`Pipeline`], and then marks the batch's
//! last offset done. Partitions run in parallel; within one, records are
//! applied strictly in offset order.

use super::batch::Pipeline;
use crate::kafka::{Consumer, PartitionKey};
use crate::record::SourceRecord;
use crate::telemetry::Telemetry;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Progress of a partition: everything before `next_offset` is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub partition: PartitionKey,
    pub next_offset: i64,
}

/// Runs until the queue closes (shutdown or end of run) or a stop request
/// interrupts a wait; the queue's remaining records are processed first
/// when it closes normally.
// One argument per collaborator; telemetry is the eighth until the loop's
// restructuring gathers them into one context.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    key: PartitionKey,
    mut queue: mpsc::Receiver<SourceRecord>,
    pipeline: Arc<Pipeline>,
    consumer: Arc<Consumer>,
    batch_max: usize,
    progress: mpsc::UnboundedSender<Progress>,
    stop: watch::Receiver<bool>,
    telemetry: Arc<Telemetry>,
) {
    let _task = telemetry.partition_task(&key);
    let mut batch = Vec::with_capacity(batch_max);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        // Take what is already queued, without waiting for more: under load
        // batches fill up, when idle a single record goes through at once.
        while batch.len() < batch_max {
            match queue.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        if pipeline.process(&batch, &stop).await.is_err() {
            telemetry.batch_abandoned(&key, &batch);
            tracing::info!(topic = %key.0, partition = key.1, "Partition stopped with a batch unfinished; it will be redelivered.");
            return;
        }
        telemetry.batch_done(&key, &batch, started.elapsed());
        tracing::debug!(topic = %key.0, partition = key.1, records = batch.len(), elapsed_ms = started.elapsed().as_millis() as u64, "Batch done.");
        if let Some(last) = batch.last() {
            consumer.mark_done(&last.topic, last.partition, last.offset);
            let _ = progress.send(Progress { partition: key.clone(), next_offset: last.offset + 1 });
        }
        batch.clear();
    }
}
