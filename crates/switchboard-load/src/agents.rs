//! The agent desktop as load (`switchboard-load traffic --agents RATE`): while the
//! traffic flows, agents set conversations waiting and solved, close them,
//! merge them and add channels, at a steady rate, reproducible by seed, with
//! the contract's SQL ([`switchboard::store::agent`]). Replies then meet waiting,
//! solved, closed and merged conversations, so reopens (R5), follow-ups
//! (R2) and merges happen under load as they do at a desk.

use super::rng::SplitMix;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchboard::store::agent::AgentAction;
use switchboard::store::Store;
use tokio::sync::watch;

/// How often each action is chosen, out of 10: what a desk's day looks
/// like, roughly (most conversations wait or get solved; few are merged).
const WEIGHTS: [(AgentAction, u64); 5] = [
    (AgentAction::SetWaiting, 3),
    (AgentAction::SetSolved, 3),
    (AgentAction::Close, 2),
    (AgentAction::Merge, 1),
    (AgentAction::AddChannel, 1),
];

/// What the agents did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentSummary {
    pub done: BTreeMap<&'static str, u64>,
    /// Nothing to act on yet (no ongoing conversation).
    pub idle: u64,
    /// The database refused (an add-channel the pair check refused, say).
    pub refused: u64,
    pub first_error: Option<String>,
}

impl AgentSummary {
    pub fn render(&self) -> String {
        let total: u64 = self.done.values().sum();
        let each: Vec<String> = self.done.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(
            "agents: {total} actions ({}); {} found nothing to act on, {} refused{}\n",
            each.join(", "),
            self.idle,
            self.refused,
            self.first_error.as_deref().map(|e| format!(" (first: {e})")).unwrap_or_default()
        )
    }
}

/// Acts `rate` times a second until `stop` turns true.
pub async fn run(store: Store, rate: f64, seed: u64, mut stop: watch::Receiver<bool>) -> AgentSummary {
    let mut rng = SplitMix::new(seed ^ 0xa6e1_75de_5c00_0000);
    let mut summary = AgentSummary::default();
    let every = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let started = Instant::now();
    let total_weight: u64 = WEIGHTS.iter().map(|(_, w)| w).sum();
    for n in 0u64.. {
        // Paced by the clock, not by how long each action took.
        let due = started + every.mul_f64(n as f64);
        if tokio::time::timeout(due.saturating_duration_since(Instant::now()), stop.wait_for(|s| *s)).await.is_ok() {
            break;
        }
        let mut pick = rng.below(total_weight);
        let action = WEIGHTS
            .iter()
            .find(|(_, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .map_or(AgentAction::SetWaiting, |(a, _)| *a);
        let point = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        let other = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        match store.agent_act(action, point, other, seed.wrapping_mul(1_000_000).wrapping_add(n)).await {
            Ok(true) => *summary.done.entry(action.as_str()).or_default() += 1,
            Ok(false) => summary.idle += 1,
            Err(e) => {
                summary.refused += 1;
                summary.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_each_action_and_what_did_not_happen() {
        let mut s = AgentSummary::default();
        s.done.insert("closed", 2);
        s.done.insert("merged", 1);
        s.idle = 4;
        assert_eq!(s.render(), "agents: 3 actions (closed 2, merged 1); 4 found nothing to act on, 0 refused\n");
    }

    #[test]
    fn every_action_has_a_weight() {
        for a in AgentAction::ALL {
            assert!(WEIGHTS.iter().any(|(w, n)| *w == a && *n > 0), "{a:?}");
        }
    }
}
