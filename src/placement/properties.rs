//! Property tests: random sequences of customer messages and agent actions
//! are placed by [`place`] against a simple in-memory store that computes the
//! facts the way `crate::store` does; after every step the invariants I1 to
//! I5 must hold, and replaying the messages must change nothing (I4).

use super::*;
use crate::domain::{Address, Details, ExternalId};
use chrono::TimeZone;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashSet};

type Pair = (Channel, String, String);

#[derive(Clone, Debug)]
struct Conv {
    c: Conversation,
    merged_into: Option<Uuid>,
    pairs: Vec<Pair>,
}

/// The in-memory store.
#[derive(Default)]
struct Model {
    convs: Vec<Conv>,
    /// (channel, endpoint, external id) -> (conversation, message id)
    messages: HashMap<(Channel, String, String), Uuid>,
    /// (from, to, kind)
    links: BTreeSet<(Uuid, Uuid, &'static str)>,
    clock: i64,
}

#[derive(Clone, Debug)]
enum Step {
    Message {
        channel: Channel,
        endpoint: u8,
        contact: u8,
        id: u8,
        reply_to: Option<u8>,
        auto: bool,
    },
    Close(u8),
    Merge(u8, u8),
    Status(u8, Status),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (prop_oneof![Just(Channel::Email), Just(Channel::Sms), Just(Channel::Messenger)], 0..2u8, 0..3u8, 0..12u8, proptest::option::of(0..12u8), proptest::bool::weighted(0.15))
            .prop_map(|(channel, endpoint, contact, id, reply_to, auto)| Step::Message { channel, endpoint, contact, id, reply_to, auto }),
        1 => (0..8u8).prop_map(Step::Close),
        1 => (0..8u8, 0..8u8).prop_map(|(a, b)| Step::Merge(a, b)),
        1 => (0..8u8, prop_oneof![Just(Status::Waiting), Just(Status::Solved), Just(Status::Pending)]).prop_map(|(c, s)| Step::Status(c, s)),
    ]
}

fn message(
    channel: Channel,
    endpoint: u8,
    contact: u8,
    id: u8,
    reply_to: Option<u8>,
    auto: bool,
) -> InboundMessage {
    let (endpoint, contact) = match channel {
        Channel::Email => (
            format!("inbox{endpoint}@acme.test"),
            format!("c{contact}@example.com"),
        ),
        Channel::Sms => (format!("80{endpoint}"), format!("38591{contact}")),
        Channel::Messenger => (format!("page{endpoint}"), format!("psid{contact}")),
    };
    InboundMessage {
        channel,
        endpoint: Address::for_channel(channel, &endpoint).unwrap(),
        contact: Address::for_channel(channel, &contact).unwrap(),
        // Email copies to two inboxes share the id, as one email would.
        external_id: ExternalId::parse(&format!("m{id}")).unwrap(),
        subject: None,
        body_text: String::new(),
        body_html: None,
        in_reply_to: reply_to.map(|r| format!("m{r}")),
        references: vec![],
        auto_generated: auto,
        sent_at: None,
        received_at: Utc.timestamp_opt(0, 0).unwrap(),
        raw: None,
        details: Details::default(),
    }
}

impl Model {
    fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + self.clock, 0).unwrap()
    }

    fn get(&self, id: Uuid) -> &Conv {
        self.convs
            .iter()
            .find(|c| c.c.id == id)
            .expect("known conversation")
    }

    fn get_mut(&mut self, id: Uuid) -> &mut Conv {
        self.convs
            .iter_mut()
            .find(|c| c.c.id == id)
            .expect("known conversation")
    }

    fn end(&self, mut id: Uuid) -> Conversation {
        for _ in 0..64 {
            match self.get(id).merged_into {
                Some(next) => id = next,
                None => break,
            }
        }
        self.get(id).c
    }

    fn ongoing(&self) -> Vec<Uuid> {
        self.convs
            .iter()
            .filter(|c| c.merged_into.is_none() && c.c.status != Status::Closed)
            .map(|c| c.c.id)
            .collect()
    }

    fn facts(&self, m: &InboundMessage) -> Facts {
        let key = (m.channel, m.endpoint.to_string(), m.external_id.to_string());
        if self.messages.contains_key(&key) {
            return Facts {
                duplicate: true,
                ..Facts::default()
            };
        }
        let references = m
            .reference_candidates()
            .filter_map(|r| {
                self.messages
                    .get(&(m.channel, m.endpoint.to_string(), r.to_owned()))
                    .map(|conv| (r.to_owned(), self.end(*conv)))
            })
            .collect();
        let pair: Pair = (m.channel, m.endpoint.to_string(), m.contact.to_string());
        let mut bound: Vec<&Conv> = self
            .convs
            .iter()
            .filter(|c| c.pairs.contains(&pair))
            .collect();
        bound.sort_by_key(|c| std::cmp::Reverse((c.c.created_at, c.c.id)));
        let direct = bound
            .iter()
            .find(|c| c.merged_into.is_none() && c.c.is_ongoing())
            .map(|c| c.c);
        let through = bound
            .iter()
            .map(|c| self.end(c.c.id))
            .find(|e| e.is_ongoing());
        let pair_ongoing = direct.or(through);
        let pair_latest_closed = match pair_ongoing {
            Some(_) => None,
            None => bound.first().map(|c| self.end(c.c.id)),
        };
        Facts {
            duplicate: false,
            references,
            pair_ongoing,
            pair_latest_closed,
            customer: None,
        }
    }

    /// Places and stores one message, as `crate::store` does.
    fn apply(&mut self, m: &InboundMessage, policy: &Policy) -> Plan {
        self.clock += 1;
        let now = self.now();
        let plan = place(m, &self.facts(m), policy, now);
        let Plan::Place(p) = &plan else { return plan };
        let landed = match &p.target {
            Target::Existing(c) => c.id,
            Target::New(_) => {
                let id = Uuid::from_u128(self.convs.len() as u128 + 1);
                let c = Conversation {
                    id,
                    status: Status::Open,
                    created_at: now,
                    closed_at: None,
                };
                self.convs.push(Conv {
                    c,
                    merged_into: None,
                    pairs: vec![(m.channel, m.endpoint.to_string(), m.contact.to_string())],
                });
                id
            }
        };
        if p.reopen {
            self.get_mut(landed).c.status = Status::Open;
        }
        if let Some(closed) = p.follow_up_of {
            self.links.insert((landed, closed, "follow_up"));
        }
        self.messages.insert(
            (m.channel, m.endpoint.to_string(), m.external_id.to_string()),
            landed,
        );
        if m.channel == Channel::Email {
            let holders = self.holders(m.external_id.as_str());
            let ids: HashSet<Uuid> = holders.iter().map(|h| h.conversation_id).collect();
            let wanted: BTreeSet<(Uuid, Uuid, &'static str)> = sibling_links(&holders)
                .into_iter()
                .map(|(a, b)| (a, b, "related"))
                .collect();
            self.links.retain(|(a, b, k)| {
                *k != "related"
                    || !(ids.contains(a) && ids.contains(b))
                    || wanted.contains(&(*a, *b, *k))
            });
            self.links.extend(wanted);
        }
        plan
    }

    fn holders(&self, external_id: &str) -> Vec<CopyHolder> {
        let mut out: Vec<CopyHolder> = self
            .messages
            .iter()
            .filter(|((ch, _, id), _)| *ch == Channel::Email && id == external_id)
            .map(|(_, conv)| CopyHolder {
                conversation_id: *conv,
                created_at: self.get(*conv).c.created_at,
            })
            .collect();
        out.sort_by_key(|h| h.conversation_id);
        out.dedup();
        out
    }

    fn agent(&mut self, step: &Step) {
        self.clock += 1;
        let now = self.now();
        let ongoing = self.ongoing();
        let pick = |n: &u8| (!ongoing.is_empty()).then(|| ongoing[*n as usize % ongoing.len()]);
        match step {
            Step::Close(n) => {
                if let Some(id) = pick(n) {
                    let c = &mut self.get_mut(id).c;
                    (c.status, c.closed_at) = (Status::Closed, Some(now));
                }
            }
            Step::Merge(a, b) => {
                if let (Some(from), Some(into)) = (pick(a), pick(b)) {
                    if from != into {
                        let conv = self.get_mut(from);
                        conv.merged_into = Some(into);
                        (conv.c.status, conv.c.closed_at) = (Status::Closed, Some(now));
                    }
                }
            }
            Step::Status(n, status) => {
                if let Some(id) = pick(n) {
                    self.get_mut(id).c.status = *status;
                }
            }
            Step::Message { .. } => unreachable!("messages are applied, not acted"),
        }
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        // I1
        let mut seen: HashMap<&Pair, Uuid> = HashMap::new();
        for conv in self
            .convs
            .iter()
            .filter(|c| c.merged_into.is_none() && c.c.is_ongoing())
        {
            for pair in &conv.pairs {
                if let Some(other) = seen.insert(pair, conv.c.id) {
                    prop_assert!(
                        false,
                        "I1: {pair:?} has two ongoing conversations {other} and {}",
                        conv.c.id
                    );
                }
            }
        }
        // I3: follow-up links point at conversations that are over.
        for (from, to, kind) in &self.links {
            prop_assert!(from != to);
            if *kind == "follow_up" {
                prop_assert_eq!(
                    self.end(*to).status,
                    Status::Closed,
                    "I3: follow-up of an ongoing conversation"
                );
            }
        }
        // I5: the related links are exactly those of the sibling sets.
        let mut wanted = BTreeSet::new();
        let ids: BTreeSet<&String> = self
            .messages
            .keys()
            .filter(|k| k.0 == Channel::Email)
            .map(|k| &k.2)
            .collect();
        for id in ids {
            wanted.extend(
                sibling_links(&self.holders(id))
                    .into_iter()
                    .map(|(a, b)| (a, b, "related")),
            );
        }
        let related: BTreeSet<_> = self
            .links
            .iter()
            .filter(|l| l.2 == "related")
            .copied()
            .collect();
        prop_assert_eq!(related, wanted, "I5");
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn invariants_hold_after_every_step_and_a_replay_changes_nothing(steps in proptest::collection::vec(step(), 1..60)) {
        let policy = Policy::default();
        let mut model = Model::default();
        let mut sent = Vec::new();
        for step in &steps {
            match step {
                Step::Message { channel, endpoint, contact, id, reply_to, auto } => {
                    let m = message(*channel, *endpoint, *contact, *id, *reply_to, *auto);
                    let before = model.messages.len();
                    let plan = model.apply(&m, &policy);
                    // I2: stored once, or recognised as already stored.
                    match plan {
                        Plan::Duplicate => prop_assert_eq!(model.messages.len(), before),
                        Plan::Place(p) => {
                            prop_assert_eq!(model.messages.len(), before + 1);
                            if let Some(closed) = p.follow_up_of {
                                // I3: exactly one link from where it landed.
                                let landed = model.messages[&(m.channel, m.endpoint.to_string(), m.external_id.to_string())];
                                prop_assert_eq!(model.links.iter().filter(|l| **l == (landed, closed, "follow_up")).count(), 1);
                                prop_assert!(!m.auto_generated, "R6: automatic mail never follows up");
                            }
                        }
                    }
                    sent.push(m);
                }
                agent_step => model.agent(agent_step),
            }
            model.check_invariants()?;
        }
        // I4: a replay of every message is all duplicates and changes nothing.
        let (links, messages) = (model.links.clone(), model.messages.clone());
        let statuses: Vec<Status> = model.convs.iter().map(|c| c.c.status).collect();
        for m in &sent {
            prop_assert_eq!(model.apply(m, &policy), Plan::Duplicate);
        }
        prop_assert_eq!(&model.links, &links);
        prop_assert_eq!(&model.messages, &messages);
        prop_assert_eq!(model.convs.iter().map(|c| c.c.status).collect::<Vec<_>>(), statuses);
    }
}
