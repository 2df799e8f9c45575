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
//! - [`placement`]: the decision table (R0 to R8 with R1r), the sender policy, the late parent, batches against a snapshot.

pub mod dead_letter;
pub mod decode;
pub mod domain;
pub mod placement;
pub mod record;
