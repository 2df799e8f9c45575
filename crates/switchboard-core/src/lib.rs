//! Switchboard's pure core: what a message is and where it belongs, with
//! no IO at all. The compiler holds the line: this crate depends on no
//! async runtime, no database driver and no Kafka client, and
//! `scripts/test.sh` fails if its dependency tree ever names tokio, sqlx or
//! rdkafka.
//!
//! - [`domain`]: channels, normalized addresses, the decoded [`domain::InboundMessage`].
//! - [`record`]: a Kafka record as the worker hands it over, owned, without rdkafka's types.
//! - [`decode`]: CloudEvents and the three channel payloads into messages, or a [`dead_letter::DlqReason`].
//! - [`dead_letter`]: the reasons and the headers of a dead letter.
//! - [`failure`]: the failure policy's verdicts (wait, retry, isolate) and Postgres's error classes.
//! - [`events`]: the conversation events' types, CloudEvents shape and ids.
//! - [`placement`]: the decision table (R0 to R8 with R1r), the sender policy, the late parent, batches against a snapshot.

// Public items are the ones other crates use; the compiler names any other.
#![warn(unreachable_pub)]

pub mod dead_letter;
pub mod decode;
pub mod domain;
pub mod events;
pub mod failure;
pub mod placement;
pub mod record;
