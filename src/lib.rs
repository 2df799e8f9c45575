//! Switchboard: the inbound side of an omnichannel support desk.
//!
//! Channel gateways publish raw customer messages (email, SMS, Messenger) to
//! Kafka as CloudEvents; Switchboard decides which conversation each belongs
//! to and writes the result to Postgres. `docs/contract.md` is the
//! specification; `docs/decisions.md` records how it is implemented.
//!
//! Layout, from the edge inwards and out again (the pure core, the store and
//! the Kafka side are crates of their own, re-exported here at the paths the
//! worker names them by; ARCHITECTURE.md, "Crates"):
//! - [`kafka`] (crate `switchboard-kafka`): the consumer, the producers,
//!   topic administration. The only crate that depends on rdkafka; it hands
//!   out owned [`record::SourceRecord`]s.
//! - [`decode`]: CloudEvents and the three channel payloads into normalized
//!   [`domain::InboundMessage`]s, or a [`dead_letter::DlqReason`]. Pure.
//! - [`placement`]: the decision table (R0 to R8 with R1r). Pure: no Kafka,
//!   no SQL, no clock.
//! - [`store`] (crate `switchboard-store`): the only crate that speaks SQL;
//!   runs a batch in one transaction under advisory locks and carries out
//!   the plans.
//! - [`worker`]: the consuming loop, one task per partition, retries,
//!   dead letters, offsets, stop-at-end.
//! - [`telemetry`] and [`http`]: what operators see of a running worker
//!   (`/metrics`, `/healthz`, `/readyz`); `http` reads `telemetry`, never the
//!   reverse, and [`sidecar`] starts both beside the worker; [`diagnose`]
//!   turns unreachable services into sentences.
//! - [`failure`] (in the core): the failure policy's verdicts: which
//!   failures are waited out, which retried a bounded number of times, which
//!   isolated; each edge reads its client's errors into them.
//! - `publisher`: the events outbox's publisher task.
//! - [`ops`]: the operators' commands (`replay`, `dead-letters`, `redrive`).
//! - [`config`], [`cli`], [`stats`]: settings, the options both commands
//!   share, counters.
//!
//! The load generator, the demo traffic and the benchmark's ceiling reader
//! are the `switchboard-load` crate (`crates/switchboard-load`): the worker's
//! binary ships without them.

// Public items are the ones the binaries, the load tool and the tests use;
// the compiler names any other.
#![warn(unreachable_pub)]

pub mod cli;
pub mod config;
// The pure core, re-exported at the paths the rest of the worker uses.
pub use switchboard_core::{dead_letter, decode, domain, events, failure, placement, record};
// The edges, each a crate of its own, at the paths the worker names them by.
pub use switchboard_kafka as kafka;
pub use switchboard_store as store;
pub mod diagnose;
pub mod http;
pub mod ops;
mod publisher;
mod sidecar;
pub mod stats;
mod telemetry;
#[cfg(test)]
mod test_records;
pub mod worker;
