//! Switchboard's load tooling, kept out of the worker's binary: synthetic
//! traffic for load tests and benchmarks (`switchboard-load traffic`), the
//! agents that act on the desk meanwhile, the demo records ([`sample`]) and
//! the benchmark's ceiling reader. The traffic is a
//! reproducible stream of email, SMS and Messenger records over a fixed
//! population of customers, in chosen channel shares, with chosen shares of
//! gateway retries (duplicates), copies of one email to a second inbox
//! (siblings), replies, automatic mail and malformed records.
//!
//! The stream depends only on the [`Mix`] (seed included), never on the rate
//! or the clock, so the same command publishes the same records.
//! [`publish`] sends it at a rate; [`plot`] draws what happened.

// Public items are the ones other crates use; the compiler names any other.
#![warn(unreachable_pub)]

pub mod agents;
mod kinds;
pub mod plot;
pub mod publish;
mod rng;
pub mod sample;

pub use kinds::Kind;

use crate::sample::SampleRecord;
use rng::SplitMix;
use std::collections::VecDeque;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Mix {
    /// How many distinct customers per channel; fewer means more appends.
    pub customers: u64,
    /// The same seed gives the same records; another seed, new ids.
    pub seed: u64,
    /// Key records by the customer's address, as the contract asks gateways
    /// to; without keys one customer's messages spread over all partitions.
    pub keyed: bool,
    /// Relative weights of new messages per channel: (sms, messenger, email).
    pub channels: (u32, u32, u32),
    /// Shares (0 to 1) of each special kind; the rest are new messages.
    pub duplicates: f64,
    pub siblings: f64,
    pub replies: f64,
    pub automatic: f64,
    pub malformed: f64,
    /// Approximate size of each email's raw source in bytes.
    pub email_bytes: usize,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix {
            customers: 5_000,
            seed: 1,
            keyed: true,
            channels: (40, 30, 30),
            duplicates: 0.0,
            siblings: 0.0,
            replies: 0.0,
            automatic: 0.0,
            malformed: 0.0,
            email_bytes: 0,
        }
    }
}

impl Mix {
    /// Parses `sms=70,messenger=20,email=10` into channel weights.
    pub fn parse_channels(text: &str) -> Result<(u32, u32, u32), String> {
        let (mut sms, mut messenger, mut email) = (0, 0, 0);
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) =
                part.split_once('=').ok_or_else(|| format!("expected channel=weight, got {part:?}"))?;
            let weight: u32 = weight.trim().parse().map_err(|_| format!("{part:?}: the weight is not a number"))?;
            match name.trim() {
                "sms" => sms = weight,
                "messenger" => messenger = weight,
                "email" => email = weight,
                other => return Err(format!("unknown channel {other:?} (sms, messenger, email)")),
            }
        }
        if sms + messenger + email == 0 {
            return Err("the mix has no channel with a weight above zero".into());
        }
        Ok((sms, messenger, email))
    }

    /// Checks that the special shares leave room for new messages.
    pub fn validate(&self) -> Result<(), String> {
        let shares = [self.duplicates, self.siblings, self.replies, self.automatic, self.malformed];
        if shares.iter().any(|s| !(0.0..=1.0).contains(s)) || shares.iter().sum::<f64>() > 1.0 {
            return Err("each share is between 0 and 1, and together they are at most 1".into());
        }
        Ok(())
    }
}

/// A message published earlier, that later records can repeat or answer.
#[derive(Clone, Debug)]
struct Published {
    n: u64,
    channel: &'static str,
    customer: u64,
    /// Sibling copies made of it so far.
    copies: u32,
    record: SampleRecord,
}

/// How many earlier messages are remembered for duplicates and replies.
const MEMORY: usize = 1_000;

/// The stream of records of one [`Mix`].
pub struct Generator {
    mix: Mix,
    n: u64,
    memory: VecDeque<Published>,
}

impl Generator {
    pub fn new(mix: Mix) -> Generator {
        Generator { mix, n: 0, memory: VecDeque::with_capacity(MEMORY) }
    }

    /// The next record and what kind it is.
    pub fn next_record(&mut self) -> (Kind, SampleRecord) {
        let n = self.n;
        self.n += 1;
        let mut rng = SplitMix::new(self.mix.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let kind = self.pick_kind(rng.unit());
        let earlier = (!self.memory.is_empty()).then(|| rng.below(self.memory.len() as u64) as usize);
        let mut remember = None;
        let (kind, record) = match (kind, earlier) {
            (Kind::Duplicate, Some(i)) => (Kind::Duplicate, self.memory[i].record.clone()),
            (Kind::Reply, Some(i)) => {
                let to = &self.memory[i];
                remember = Some((to.channel, to.customer));
                (Kind::Reply, kinds::reply(&self.mix, n, to.channel, to.customer, to.n))
            }
            (Kind::Sibling, Some(i)) if self.earlier_email(i).is_some() => {
                let j = self.earlier_email(i).unwrap_or_default();
                let of = &mut self.memory[j];
                // Each copy reaches another inbox, so no copy repeats another.
                of.copies += 1;
                (Kind::Sibling, kinds::sibling(&self.mix, n, of.n, of.customer, of.copies))
            }
            (Kind::Automatic, _) => {
                let customer = rng.below(self.mix.customers.max(1));
                (Kind::Automatic, kinds::automatic(&self.mix, n, customer))
            }
            (Kind::Malformed, _) => (Kind::Malformed, kinds::malformed(&self.mix, n)),
            // A new message, also when there is nothing earlier to repeat,
            // answer or copy yet.
            _ => {
                let channel = self.pick_channel(rng.unit());
                let customer = rng.below(self.mix.customers.max(1));
                remember = Some((channel, customer));
                (Kind::New, kinds::new_message(&self.mix, n, channel, customer))
            }
        };
        if let Some((channel, customer)) = remember {
            if self.memory.len() == MEMORY {
                self.memory.pop_front();
            }
            self.memory.push_back(Published { n, channel, customer, copies: 0, record: record.clone() });
        }
        (kind, record)
    }

    /// The newest remembered email at or before position `i`, else after it.
    fn earlier_email(&self, i: usize) -> Option<usize> {
        let email = |j: &usize| self.memory[*j].channel == "email";
        (0..=i).rev().find(email).or_else(|| (i + 1..self.memory.len()).find(email))
    }

    fn pick_kind(&self, u: f64) -> Kind {
        let m = &self.mix;
        let mut edge = 0.0;
        for (share, kind) in [
            (m.duplicates, Kind::Duplicate),
            (m.siblings, Kind::Sibling),
            (m.replies, Kind::Reply),
            (m.automatic, Kind::Automatic),
            (m.malformed, Kind::Malformed),
        ] {
            edge += share;
            if u < edge {
                return kind;
            }
        }
        Kind::New
    }

    fn pick_channel(&self, u: f64) -> &'static str {
        let (sms, messenger, email) = self.mix.channels;
        let x = u * f64::from(sms + messenger + email);
        if x < f64::from(sms) {
            "sms"
        } else if x < f64::from(sms + messenger) {
            "messenger"
        } else {
            "email"
        }
    }
}

#[cfg(test)]
mod tests;
