//! librdkafka's own logs and error callbacks, with repeats held back.
//!
//! librdkafka reports a refused password, an untrusted certificate or an
//! unreachable broker on every attempt, from every client, several times a
//! second: 81 lines in 90 s for a wrong password, 2,425 for a wrong CA. The
//! first line names the cause; the rest bury it. So every client of this
//! process logs through one gate: a line is written the first time it is
//! seen, and a line like it (the same text with its numbers blanked, so
//! "after 7ms" and "after 9ms" are one) at most once a minute after that,
//! saying how many were held back.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How often a line like one already written is written again.
pub(crate) const REPEAT_EVERY: Duration = Duration::from_secs(60);

/// Distinct lines remembered; past this the memory starts over (a line
/// may then be written once more than it would be).
const REMEMBERED: usize = 512;

#[derive(Default)]
struct Seen {
    lines: HashMap<String, Line>,
}

struct Line {
    written: Instant,
    held: u64,
}

impl Seen {
    /// `Some(held back since the last time)` when the line is due.
    fn due(&mut self, text: &str, now: Instant) -> Option<u64> {
        let shape = shape_of(text);
        if let Some(line) = self.lines.get_mut(&shape) {
            if now.duration_since(line.written) < REPEAT_EVERY {
                line.held += 1;
                return None;
            }
            let held = line.held;
            *line = Line { written: now, held: 0 };
            return Some(held);
        }
        if self.lines.len() >= REMEMBERED {
            self.lines.clear();
        }
        self.lines.insert(shape, Line { written: now, held: 0 });
        Some(0)
    }
}

static SEEN: LazyLock<Mutex<Seen>> = LazyLock::new(Mutex::default);

/// The text with every run of digits replaced by `#`.
fn shape_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

fn due(text: &str) -> Option<u64> {
    SEEN.lock().ok()?.due(text, Instant::now())
}

fn suffix(held: u64) -> String {
    if held == 0 {
        String::new()
    } else {
        format!(" ({held} more like it in the last {} s were not logged)", REPEAT_EVERY.as_secs())
    }
}

/// A librdkafka log line, through the gate.
pub(crate) fn log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    use RDKafkaLogLevel::*;
    // Debug and informational lines are many and never alarming: they go
    // straight to `debug`, unthrottled (only a debugging operator sees them).
    if matches!(level, Info | Debug) {
        tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}");
        return;
    }
    let text = format!("{facility} {message}");
    let Some(held) = due(&text) else {
        tracing::trace!(target: "librdkafka", "librdkafka: {text}");
        return;
    };
    let more = suffix(held);
    match level {
        Emerg | Alert | Critical | Error => tracing::error!(target: "librdkafka", "librdkafka: {text}{more}"),
        Warning => tracing::warn!(target: "librdkafka", "librdkafka: {text}{more}"),
        _ => tracing::info!(target: "librdkafka", "librdkafka: {text}{more}"),
    }
}

/// A librdkafka error callback, through the gate.
pub(crate) fn error(error: &KafkaError, reason: &str) {
    let text = format!("{error}: {reason}");
    match due(&text) {
        Some(held) => tracing::error!(target: "librdkafka", "librdkafka: {text}{}", suffix(held)),
        None => tracing::trace!(target: "librdkafka", "librdkafka: {text}"),
    }
}

/// The context of every client but the group consumer (which has its own,
/// logging through the same gate).
#[derive(Clone, Copy, Default)]
pub struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self::error(&error, reason);
    }
}

impl ConsumerContext for Quiet {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_written_once_then_at_most_once_a_minute_with_the_count_held_back() {
        let mut seen = Seen::default();
        let start = Instant::now();
        let failed = |ms: u32| {
            format!("FAIL [thrd:sasl_ssl://127.0.0.1:9192/bootstrap]: authentication failed (after {ms}ms in state AUTH_REQ)")
        };
        assert_eq!(seen.due(&failed(7), start), Some(0), "the first is written");
        for (i, ms) in [9, 12, 130].into_iter().enumerate() {
            let at = start + Duration::from_secs(i as u64 + 1);
            assert_eq!(seen.due(&failed(ms), at), None, "a repeat with other numbers is held back");
        }
        assert_eq!(seen.due("another cause", start), Some(0), "another line is written at once");
        assert_eq!(seen.due(&failed(8), start + REPEAT_EVERY), Some(3), "due again, with the count held back");
        assert_eq!(seen.due(&failed(8), start + REPEAT_EVERY + Duration::from_secs(1)), None);
    }

    #[test]
    fn the_memory_of_lines_is_bounded() {
        let mut seen = Seen::default();
        let now = Instant::now();
        for i in 0..(REMEMBERED * 3) {
            seen.due(&format!("line {}", "x".repeat(i % 700)), now);
        }
        assert!(seen.lines.len() <= REMEMBERED);
    }

    #[test]
    fn numbers_are_blanked_in_the_shape() {
        assert_eq!(shape_of("after 7ms, broker 1001/1"), "after #ms, broker #/#");
    }
}
