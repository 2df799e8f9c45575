//! Per-partition and broker state, and the health and readiness verdicts
//! drawn from them (Kubernetes' split: liveness says "restart me",
//! readiness says "do not count on me right now").

use super::Telemetry;
use crate::kafka::PartitionKey;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a partition task is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskState {
    /// No task yet (known from the assignment only).
    None,
    Running,
    /// Ended normally (queue closed, stop requested, partition revoked).
    Ended,
    /// Unwound: a bug. `/healthz` fails until the process restarts.
    Died,
}

#[derive(Debug)]
pub(crate) struct PartitionState {
    pub consumed: u64,
    pub in_flight: u64,
    /// The next offset not yet durable, as this process knows it.
    pub next_offset: Option<i64>,
    /// The last batch done, or when the partition was assigned.
    pub last_progress: Instant,
    /// From the lag poller.
    pub high_watermark: Option<i64>,
    pub committed: Option<i64>,
    pub assigned: bool,
    pub task: TaskState,
}

impl PartitionState {
    pub(super) fn new() -> PartitionState {
        PartitionState {
            consumed: 0,
            in_flight: 0,
            next_offset: None,
            last_progress: Instant::now(),
            high_watermark: None,
            committed: None,
            assigned: false,
            task: TaskState::None,
        }
    }

    /// High watermark minus committed offset, as `kafka-consumer-groups.sh`
    /// computes it. A group with no commit yet is behind by the whole
    /// partition as far as the broker knows; we report nothing rather than
    /// guess the start.
    pub(super) fn lag(&self) -> Option<i64> {
        Some((self.high_watermark? - self.committed?).max(0))
    }

    /// Work is waiting: records in flight, or the broker has more than the
    /// group committed.
    fn has_work(&self) -> bool {
        self.in_flight > 0 || self.lag().is_some_and(|l| l > 0)
    }
}

#[derive(Debug, Default)]
pub(crate) struct BrokerState {
    pub last_ok: Option<Instant>,
    pub last_error: Option<String>,
}

/// The broker counts as reachable while its last answer is this recent.
const BROKER_FRESH: Duration = Duration::from_secs(15);

/// An infrastructure wait is a `/readyz` reason once it lasts this long.
const WAIT_REPORTED_AFTER: Duration = Duration::from_secs(2);

/// A `/readyz` verdict: ready, or the reasons not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    Ready,
    NotReady(Vec<String>),
}

/// Drop guard of a partition task (see [`Telemetry::partition_task`]).
pub(crate) struct PartitionTask {
    telemetry: Arc<Telemetry>,
    key: PartitionKey,
}

impl PartitionTask {
    pub(super) fn new(telemetry: Arc<Telemetry>, key: PartitionKey) -> PartitionTask {
        PartitionTask { telemetry, key }
    }
}

impl Drop for PartitionTask {
    fn drop(&mut self) {
        self.telemetry.task_ended(&self.key, std::thread::panicking());
    }
}

impl Telemetry {
    /// `/healthz`: `Err` names the partitions whose task died.
    pub(crate) fn health(&self) -> Result<(), String> {
        let map = self.partitions.lock().map_err(|_| "telemetry state is poisoned".to_owned())?;
        let dead: Vec<String> =
            map.iter().filter(|(_, p)| p.task == TaskState::Died).map(|((t, p), _)| format!("{t}/{p}")).collect();
        if dead.is_empty() {
            Ok(())
        } else {
            Err(format!("partition task died: {}", dead.join(", ")))
        }
    }

    /// `/readyz`, given whether Postgres answered just now (the error is a
    /// sentence naming Postgres).
    pub(crate) fn readiness(&self, postgres: Result<(), String>) -> Readiness {
        let mut reasons = Vec::new();
        if let Err(e) = postgres {
            reasons.push(e);
        }
        if let Ok(b) = self.broker.lock() {
            match (b.last_ok, &b.last_error) {
                (Some(t), _) if t.elapsed() < BROKER_FRESH => {}
                (_, Some(e)) => reasons.push(format!("broker: {e}")),
                (Some(t), None) => reasons.push(format!("broker: no answer for {} s", t.elapsed().as_secs())),
                (None, None) => reasons.push("broker: not contacted yet".to_owned()),
            }
        }
        if let Ok(map) = self.partitions.lock() {
            if !map.values().any(|p| p.assigned) {
                reasons.push("no partitions assigned".to_owned());
            }
            for ((topic, partition), p) in map.iter().filter(|(_, p)| p.assigned) {
                let quiet = p.last_progress.elapsed();
                if p.has_work() && quiet > self.stuck_after {
                    reasons.push(format!(
                        "partition {topic}/{partition} stuck: no progress for {} s with {} records in flight and lag {}",
                        quiet.as_secs(),
                        p.in_flight,
                        p.lag().map_or_else(|| "unknown".to_owned(), |l| l.to_string())
                    ));
                }
            }
        }
        if let Ok(o) = self.outbox.lock() {
            if let Some((rows, age)) = o.alarm {
                if o.rows > rows || o.oldest_secs > age.as_secs_f64() {
                    reasons.push(format!(
                        "events outbox holds {} rows, the oldest unpublished for {:.0} s (bounds {rows} rows, {} s): \
                         the events broker is down or refuses the topic",
                        o.rows,
                        o.oldest_secs,
                        age.as_secs()
                    ));
                }
            }
        }
        // A wait shorter than this is a passing fault (a deadlock retried),
        // not a reason to take the worker out of rotation.
        for (who, cause, since) in self.stats.waits() {
            if since >= WAIT_REPORTED_AFTER {
                reasons.push(format!("{who} waits for {} s: {}", since.as_secs(), cause.sentence()));
            }
        }
        if reasons.is_empty() {
            Readiness::Ready
        } else {
            Readiness::NotReady(reasons)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::SourceRecord;
    use crate::stats::Stats;

    fn record(offset: i64) -> SourceRecord {
        crate::test_records::zeros(offset, 10)
    }

    fn key() -> PartitionKey {
        ("t".into(), 0)
    }

    #[test]
    fn ready_needs_postgres_the_broker_and_an_assignment() {
        let t = Telemetry::new(Arc::new(Stats::default()), Duration::from_secs(60));
        let Readiness::NotReady(reasons) = t.readiness(Err("down".into())) else { panic!("not ready") };
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        t.broker_contact(Ok(()));
        t.polled(&[key()], &[(key(), Some(5), Some(5))]);
        assert_eq!(t.readiness(Ok(())), Readiness::Ready);
    }

    #[test]
    fn a_partition_with_work_and_no_progress_is_stuck() {
        let t = Telemetry::new(Arc::new(Stats::default()), Duration::ZERO);
        t.broker_contact(Ok(()));
        t.polled(&[key()], &[(key(), Some(5), Some(5))]);
        assert_eq!(t.readiness(Ok(())), Readiness::Ready, "no lag, nothing in flight: idle, not stuck");
        t.consumed(&record(5));
        // With stuck_after zero the partition is stuck as soon as any time
        // has passed since its last progress: wait for that, not a set time.
        let started = std::time::Instant::now();
        let reasons = loop {
            if let Readiness::NotReady(reasons) = t.readiness(Ok(())) {
                break reasons;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "never reported stuck");
            std::hint::spin_loop();
        };
        assert!(reasons[0].contains("t/0 stuck"), "{reasons:?}");
        t.batch_done(&key(), &[record(5)], &[Instant::now()], Instant::now(), None);
        t.polled(&[key()], &[(key(), Some(6), Some(6))]);
        assert_eq!(t.readiness(Ok(())), Readiness::Ready);
    }

    #[test]
    fn a_partition_waiting_on_the_infrastructure_says_why_once_the_wait_lasts() {
        let stats = Arc::new(Stats::default());
        let t = Telemetry::new(stats.clone(), Duration::from_secs(60));
        t.broker_contact(Ok(()));
        t.polled(&[key()], &[(key(), Some(5), Some(5))]);
        stats.waiting("partition t/0", Some(crate::failure::Infra::Refused));
        assert_eq!(t.readiness(Ok(())), Readiness::Ready, "a wait just begun is a passing fault");
        let started = std::time::Instant::now();
        let reasons = loop {
            if let Readiness::NotReady(reasons) = t.readiness(Ok(())) {
                break reasons;
            }
            assert!(started.elapsed() < WAIT_REPORTED_AFTER * 3, "the wait was never reported");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].starts_with("partition t/0 waits for "), "{reasons:?}");
        assert!(reasons[0].contains("grant or ACL"), "names the cause: {reasons:?}");
        stats.waiting("partition t/0", None);
        assert_eq!(t.readiness(Ok(())), Readiness::Ready);
    }

    #[test]
    fn a_task_that_panics_fails_the_health_check() {
        let t = Telemetry::new(Arc::new(Stats::default()), Duration::from_secs(60));
        let normal = t.partition_task(&key());
        drop(normal);
        assert!(t.health().is_ok());
        let t2 = t.clone();
        let _ = std::thread::spawn(move || {
            let _guard = t2.partition_task(&("t".into(), 1));
            panic!("a bug");
        })
        .join();
        assert_eq!(t.health(), Err("partition task died: t/1".to_owned()));
    }
}
