//! The broker asked, before the worker joins its group, whether this
//! client may do what the worker does: log in, trust the broker's
//! certificate, read the input topics, use the group, write the dead-letter
//! (and events) topic.
//!
//! Why before: once running, librdkafka retries a refused login or an
//! untrusted certificate without end and the consumer only ever sees
//! "all brokers down"; the worker would wait for an infrastructure that is
//! up and refusing it. A refusal is the operator's to fix, so it is named
//! once, with what to change, and the worker exits. A broker that does not
//! answer at all is different: it may come back, and the worker waits for
//! it as it always has.

use super::client_config;
use crate::settings::KafkaSettings;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::TopicPartitionList;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the worker does with the broker, to be asked for.
pub struct Access<'a> {
    /// Topics it consumes (READ, DESCRIBE).
    pub read: &'a [&'a str],
    /// Topics it publishes to (WRITE).
    pub write: &'a [&'a str],
    /// Its consumer group (READ).
    pub group: &'a str,
}

/// The broker answered, or did not within the time given.
#[derive(Debug, PartialEq, Eq)]
pub enum Probed {
    /// Logged in, and every topic and the group are allowed.
    Allowed,
    /// No answer; the worker goes on and waits for the broker as before.
    Unreachable(String),
}

/// The broker refuses this client: the operator's to fix. The texts name
/// what is wrong and what to change, never a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error(
        "the Kafka broker at {servers} refused the SASL login{user}: {reason}. \
         Check sasl.username, sasl.password and sasl.mechanism \
         (SWITCHBOARD_RDKAFKA_SASL_USERNAME, SWITCHBOARD_RDKAFKA_SASL_PASSWORD, SWITCHBOARD_RDKAFKA_SASL_MECHANISM)"
    )]
    Login { servers: String, user: String, reason: String },
    #[error(
        "the TLS handshake with the Kafka broker at {servers} failed: {reason}. \
         Check ssl.ca.location (SWITCHBOARD_RDKAFKA_SSL_CA_LOCATION): it must hold the CA that signed the broker's certificate"
    )]
    Certificate { servers: String, reason: String },
    #[error(
        "the Kafka principal{user} may not {what} topic {topic} ({code}). \
         Grant it the ACLs in docs/operations.md, \"Kafka ACLs\""
    )]
    Topic { user: String, what: &'static str, topic: String, code: String },
    #[error(
        "the Kafka principal{user} may not use consumer group {group} ({code}). \
         Grant it READ on the group (docs/operations.md, \"Kafka ACLs\")"
    )]
    Group { user: String, group: String, code: String },
    #[error("the Kafka client could not be set up: {0}. Check the librdkafka properties (SWITCHBOARD_RDKAFKA_*)")]
    Client(String),
}

/// The first refusal librdkafka reported, through its error callback or
/// the connection's `FAIL` log line (which comes first, from the broker's
/// thread, and carries the reason).
#[derive(Default)]
struct Probe {
    refused: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl Probe {
    fn refuse(&self, code: RDKafkaErrorCode, reason: &str) {
        if let Ok(mut refused) = self.refused.lock() {
            refused.get_or_insert((code, reason.to_owned()));
        }
    }
}

impl ClientContext for Probe {
    // The probe's findings are reported by whoever asked; its own lines
    // would only repeat them.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(target: "librdkafka", ?level, "librdkafka (preflight): {fac} {log_message}");
        if fac == "FAIL" {
            if let Some(code) = refusal_in(log_message) {
                self.refuse(code, log_message);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "librdkafka (preflight): {error}: {reason}");
        match error.rdkafka_error_code() {
            Some(code @ (RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL)) => self.refuse(code, reason),
            _ => {
                if let Some(code) = refusal_in(reason) {
                    self.refuse(code, reason);
                }
            }
        }
    }
}

/// Whether a connection failure librdkafka reports is a refusal: the
/// broker (or its certificate) said no, rather than did not answer.
fn refusal_in(text: &str) -> Option<RDKafkaErrorCode> {
    // Only a failed verification: "SSL handshake failed: Disconnected" is a
    // connection closed mid-handshake (a broker restarting, a proxy with
    // nothing behind it), which is waited for like any unreachable broker.
    if text.contains("certificate verify failed") {
        Some(RDKafkaErrorCode::SSL)
    } else if text.contains("SASL authentication error") || text.contains("Authentication failed") {
        Some(RDKafkaErrorCode::Authentication)
    } else {
        None
    }
}

impl ConsumerContext for Probe {}

/// Asks the broker, for up to `within` while it does not answer.
pub fn preflight(settings: &KafkaSettings, access: &Access<'_>, within: Duration) -> Result<Probed, Refusal> {
    let servers = settings.bootstrap_servers.clone();
    let user = settings.properties.get("sasl.username").map(|u| format!(" {u}")).unwrap_or_default();
    let probe: BaseConsumer<Probe> = client_config(
        settings,
        &[],
        &[("group.id", access.group), ("enable.auto.commit", "false"), ("enable.partition.eof", "false")],
    )
    .create_with_context(Probe::default())
    .map_err(|e| Refusal::Client(without_values(&e)))?;
    let refused = |probe: &BaseConsumer<Probe>| -> Option<Refusal> {
        let (code, reason) = probe.context().refused.lock().ok()?.clone()?;
        let reason = reason_of(&reason);
        Some(match code {
            RDKafkaErrorCode::SSL => Refusal::Certificate { servers: servers.clone(), reason },
            _ => Refusal::Login { servers: servers.clone(), user: user.clone(), reason },
        })
    };
    let Some(first) = access.read.first() else { return Ok(Probed::Allowed) };
    let deadline = Instant::now() + within;
    loop {
        match probe.fetch_metadata(Some(first), Duration::from_secs(2)) {
            Ok(_) => break,
            Err(e) => {
                // Serves the error callbacks queued meanwhile.
                while probe.poll(Duration::ZERO).is_some() {}
                if let Some(refusal) = refused(&probe) {
                    return Err(refusal);
                }
                if Instant::now() >= deadline {
                    return Ok(Probed::Unreachable(e.to_string()));
                }
            }
        }
    }
    let asks = access.read.iter().map(|t| ("read", *t)).chain(access.write.iter().map(|t| ("write", *t)));
    for (what, topic) in asks {
        let metadata = match probe.fetch_metadata(Some(topic), Duration::from_secs(10)) {
            Ok(metadata) => metadata,
            Err(e) => {
                while probe.poll(Duration::ZERO).is_some() {}
                return match refused(&probe) {
                    Some(refusal) => Err(refusal),
                    // Slow or gone: waited for like a broker that never answered.
                    None => Ok(Probed::Unreachable(format!("asking for topic {topic}'s metadata: {e}"))),
                };
            }
        };
        let denied = metadata.topics().iter().find_map(|t| t.error().map(RDKafkaErrorCode::from));
        if let Some(code @ RDKafkaErrorCode::TopicAuthorizationFailed) = denied {
            return Err(Refusal::Topic { user: user.clone(), what, topic: topic.to_owned(), code: code_name(code) });
        }
    }
    // Reading the group's committed offsets needs the group's ACL.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(first, 0);
    // A group it may not use makes librdkafka look for the group's
    // coordinator again and again: the call times out, and the refusal
    // itself waits on the client's queue.
    let committed = probe.committed_offsets(tpl, Duration::from_secs(5));
    let denied = RDKafkaErrorCode::GroupAuthorizationFailed;
    let mut refused_group = committed.as_ref().err().and_then(KafkaError::rdkafka_error_code) == Some(denied);
    if committed.is_err() {
        while let Some(polled) = probe.poll(Duration::ZERO) {
            refused_group |= polled.err().and_then(|e| e.rdkafka_error_code()) == Some(denied);
        }
    }
    tracing::debug!(?committed, refused_group, "preflight: the group's committed offsets");
    if refused_group {
        return Err(Refusal::Group { user, group: access.group.to_owned(), code: code_name(denied) });
    }
    Ok(Probed::Allowed)
}

/// A client creation error without the property's value, which rdkafka
/// prints and which may be a password under a misspelt name.
fn without_values(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, description, key, _) => format!("property {key}: {description}"),
        other => other.to_string(),
    }
}

/// `TOPIC_AUTHORIZATION_FAILED`, as Kafka's documentation names it.
fn code_name(code: RDKafkaErrorCode) -> String {
    let name = format!("{code:?}");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// librdkafka's reason without the thread and broker prefix it repeats
/// ("sasl_ssl://127.0.0.1:9192/bootstrap: ") and the state suffix.
fn reason_of(reason: &str) -> String {
    let text = reason.split_once("/bootstrap: ").map_or(reason, |(_, r)| r);
    let text = text.split(" (after ").next().unwrap_or(text);
    text.trim().trim_start_matches("SSL handshake failed: ").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_property_is_named_without_its_value() {
        let mut settings = crate::KafkaSettings {
            bootstrap_servers: "127.0.0.1:9092".to_owned(),
            group_id: "g".to_owned(),
            topics: crate::TopicSettings {
                email: "in".to_owned(),
                sms: "in".to_owned(),
                messenger: "in".to_owned(),
                dlq: "dlq".to_owned(),
                events: "events".to_owned(),
            },
            properties: Default::default(),
        };
        settings.properties.insert("sasl.paswordd".to_owned(), "s3cret-value".to_owned());
        let access = Access { read: &["in"], write: &[], group: "g" };
        let err = preflight(&settings, &access, Duration::from_secs(1)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sasl.paswordd"), "{text}");
        assert!(!text.contains("s3cret-value"), "{text}");
    }

    #[test]
    fn kafka_error_codes_read_as_the_protocol_names_them() {
        assert_eq!(code_name(RDKafkaErrorCode::TopicAuthorizationFailed), "TOPIC_AUTHORIZATION_FAILED");
        assert_eq!(code_name(RDKafkaErrorCode::GroupAuthorizationFailed), "GROUP_AUTHORIZATION_FAILED");
    }

    #[test]
    fn a_refused_login_and_an_untrusted_certificate_are_told_from_a_broker_that_is_down() {
        let sasl = "sasl_ssl://127.0.0.1:9192/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 330ms in state AUTH_REQ)";
        let tls = "sasl_ssl://127.0.0.1:9192/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified (after 16ms in state SSL_HANDSHAKE)";
        let down = "sasl_ssl://127.0.0.1:9192/bootstrap: Connect to ipv4#127.0.0.1:9192 failed: Connection refused (after 0ms in state CONNECT)";
        let cut = "sasl_ssl://127.0.0.1:9192/bootstrap: SSL handshake failed: Disconnected: connecting to a PLAINTEXT broker listener? (after 2ms in state SSL_HANDSHAKE)";
        assert_eq!(refusal_in(sasl), Some(RDKafkaErrorCode::Authentication));
        assert_eq!(refusal_in(tls), Some(RDKafkaErrorCode::SSL));
        assert_eq!(refusal_in(down), None);
        assert_eq!(refusal_in(cut), None, "a handshake cut short is a broker that went away, not a refusal");
    }

    #[test]
    fn the_reason_loses_librdkafkas_prefix_and_timing() {
        let raw = "sasl_ssl://127.0.0.1:9192/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 3ms in state AUTH_REQ)";
        assert_eq!(
            reason_of(raw),
            "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
    }
}
