//! Property tests of the decision table as the store runs it
//! ([`plan_batch`]): random batches of customer messages (replies in any
//! order, copies of one email at up to four inboxes) and random agent
//! actions (close, merge, status, add a channel) against the in-memory
//! database of [`super::batch_model`]. After every step I1, I2, I3 and I5
//! hold; a replay changes nothing (I4); and placing messages in batches of
//! any size ends exactly as placing them one at a time.

use super::batch::*;
use super::batch_model::Db;
use super::*;
use crate::domain::{Address, Details, ExternalId};
use chrono::TimeZone;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// Messages by key to their conversation, conversations (named by their
/// creating message) to status and merge target, and links.
type Canonical = (
    BTreeMap<MessageKey, MessageKey>,
    BTreeMap<MessageKey, (Status, Option<MessageKey>)>,
    BTreeSet<(MessageKey, MessageKey, &'static str)>,
);

/// (channel, endpoint, contact, id, reply to, automatic, more inboxes): an
/// email also goes, as copies with the same Message-ID, to every inbox whose
/// bit is set in the last field.
type Spec = (u8, u8, u8, u8, Option<u8>, bool, u8);

#[derive(Clone, Debug)]
enum Step {
    Batch(Vec<Spec>),
    Close(u8),
    Merge(u8, u8),
    Status(u8, Status),
    /// The agent binds (channel, endpoint, contact) to an ongoing conversation.
    AddChannel(u8, (u8, u8, u8)),
}

const INBOXES: u8 = 4;

fn addresses(channel: Channel, endpoint: u8, contact: u8) -> (String, String) {
    match channel {
        Channel::Email => (format!("inbox{endpoint}@acme.test"), format!("c{contact}@example.com")),
        Channel::Sms => (format!("80{endpoint}"), format!("38591{contact}")),
        Channel::Messenger => (format!("page{endpoint}"), format!("psid{contact}")),
    }
}

fn channel_of(n: u8) -> Channel {
    [Channel::Email, Channel::Sms, Channel::Messenger][n as usize % 3]
}

fn messages(spec: &Spec) -> Vec<InboundMessage> {
    let (channel, endpoint, contact, id, reply_to, auto, fan) = *spec;
    let channel = channel_of(channel);
    let mut endpoints = vec![endpoint];
    if channel == Channel::Email {
        endpoints.extend((0..INBOXES).filter(|e| fan & (1 << e) != 0 && *e != endpoint));
    }
    endpoints
        .into_iter()
        .map(|endpoint| {
            let (endpoint, contact) = addresses(channel, endpoint, contact);
            InboundMessage {
                channel,
                endpoint: Address::for_channel(channel, &endpoint).unwrap(),
                contact: Address::for_channel(channel, &contact).unwrap(),
                external_id: ExternalId::parse(&format!("m{id}")).unwrap(),
                subject: None,
                body_text: String::new(),
                body_html: None,
                in_reply_to: reply_to.map(|r| format!("m{r}").into()),
                references: vec![],
                auto_generated: auto,
                sent_at: None,
                received_at: Utc.timestamp_opt(0, 0).unwrap(),
                raw: None,
                details: Details::default(),
            }
        })
        .collect()
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let fan = prop_oneof![2 => Just(0u8), 1 => 0..16u8];
    let msg = (0..3u8, 0..INBOXES, 0..3u8, 0..10u8, proptest::option::of(0..10u8), proptest::bool::weighted(0.15), fan);
    let step = prop_oneof![
        4 => proptest::collection::vec(msg, 1..8).prop_map(Step::Batch),
        1 => (0..8u8).prop_map(Step::Close),
        1 => (0..8u8, 0..8u8).prop_map(|(a, b)| Step::Merge(a, b)),
        1 => (0..8u8, prop_oneof![Just(Status::Waiting), Just(Status::Solved), Just(Status::Pending)]).prop_map(|(c, s)| Step::Status(c, s)),
        1 => (0..8u8, (0..3u8, 0..INBOXES, 0..3u8)).prop_map(|(c, p)| Step::AddChannel(c, p)),
    ];
    proptest::collection::vec(step, 1..25)
}

impl Db {
    /// Ongoing conversations in an order both runs agree on.
    fn ongoing(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .convs
            .values()
            .filter(|r| r.merged_into.is_none() && r.conversation.is_ongoing())
            .map(|r| r.conversation.id)
            .collect();
        ids.sort_by_key(|id| self.creator.get(id).cloned());
        ids
    }

    fn act(&mut self, step: &Step) {
        self.clock += 1;
        let now = self.now();
        let ongoing = self.ongoing();
        let pick = |n: &u8| (!ongoing.is_empty()).then(|| ongoing[*n as usize % ongoing.len()]);
        let close = |db: &mut Db, id: Uuid, into: Option<Uuid>| {
            let row = db.convs.get_mut(&id).unwrap();
            row.merged_into = into;
            (row.conversation.status, row.conversation.closed_at) = (Status::Closed, Some(now));
        };
        match step {
            Step::Close(n) => {
                if let Some(id) = pick(n) {
                    close(self, id, None);
                }
            }
            Step::Merge(a, b) => {
                if let (Some(from), Some(into)) = (pick(a), pick(b)) {
                    if from != into {
                        close(self, from, Some(into));
                    }
                }
            }
            Step::Status(n, status) => {
                if let Some(id) = pick(n) {
                    self.convs.get_mut(&id).unwrap().conversation.status = *status;
                }
            }
            Step::AddChannel(n, (channel, endpoint, contact)) => {
                let Some(id) = pick(n) else { return };
                let channel = channel_of(*channel);
                let (endpoint, contact) = addresses(channel, *endpoint, *contact);
                let e = Address::for_channel(channel, &endpoint).unwrap().to_string();
                let c = Address::for_channel(channel, &contact).unwrap().to_string();
                let pair = PairKey::new(channel, e, c);
                // The database refuses a binding that exists (primary key)
                // or that gives the pair a second ongoing conversation (the
                // add-channel trigger).
                let refused = self.bindings.iter().any(|(p, other)| {
                    *p == pair
                        && (*other == id
                            || self.convs[other].merged_into.is_none() && self.convs[other].conversation.is_ongoing())
                });
                if !refused {
                    self.bindings.push((pair, id));
                }
            }
            Step::Batch(_) => unreachable!("batches are placed, not acted"),
        }
    }

    /// The state in names both runs share: conversations by their creating
    /// message.
    fn canonical(&self) -> Canonical {
        let name = |id: &Uuid| self.creator[id].clone();
        let messages = self.messages.iter().map(|(k, c)| (k.clone(), name(c))).collect();
        let convs = self
            .convs
            .iter()
            .map(|(id, r)| (name(id), (r.conversation.status, r.merged_into.as_ref().map(name))))
            .collect();
        // A related link's direction is whichever was stored first (I5
        // counts a pair once either way): compared as an unordered pair.
        let links = self
            .links
            .iter()
            .map(|(a, b, k)| {
                let (a, b) = (name(a), name(b));
                if *k == "related" && b < a {
                    (b, a, *k)
                } else {
                    (a, b, *k)
                }
            })
            .collect();
        (messages, convs, links)
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let mut seen = BTreeSet::new();
        let bound: BTreeSet<&(PairKey, Uuid)> = self.bindings.iter().collect();
        for (pair, id) in bound {
            let r = self.convs[id];
            if r.merged_into.is_none() && r.conversation.is_ongoing() {
                prop_assert!(seen.insert(pair.clone()), "I1: {pair:?} has two ongoing conversations");
            }
        }
        // I2: every message sent is stored, once (the map has one row per key).
        prop_assert!(self.messages.keys().eq(self.sent.iter()), "I2: stored messages differ from those sent");
        // I5: every link some Message-ID calls for exists, and every other
        // related link was made by another rule (R1r).
        let called_for = self.sibling_links_called_for();
        let related: BTreeSet<(Uuid, Uuid)> =
            self.links.iter().filter(|l| l.2 == "related").map(|l| (l.0, l.1)).collect();
        // I5 both ways: no pair is linked A to B and B to A.
        let reversed: Vec<_> = related.iter().filter(|(a, b)| a < b && related.contains(&(*b, *a))).collect();
        prop_assert!(reversed.is_empty(), "I5: pairs linked both ways: {reversed:?}");
        let missing: Vec<_> =
            called_for.iter().filter(|(a, b)| !related.contains(&(*a, *b)) && !related.contains(&(*b, *a))).collect();
        prop_assert!(missing.is_empty(), "I5: sibling links missing: {missing:?}");
        let unexplained: Vec<_> = self.sibling_only.difference(&called_for).collect();
        prop_assert!(unexplained.is_empty(), "I5: sibling links no Message-ID calls for: {unexplained:?}");
        for (from, to, kind) in &self.links {
            prop_assert!(from != to, "a conversation linked to itself");
            if *kind == "follow_up" {
                prop_assert_eq!(
                    self.convs[to].conversation.status,
                    Status::Closed,
                    "I3: follow-up of an ongoing conversation"
                );
            }
        }
        Ok(())
    }
}

fn run(steps: &[Step], batched: bool) -> Result<Db, TestCaseError> {
    let policy = Policy::default();
    let mut db = Db::default();
    for step in steps {
        match step {
            Step::Batch(specs) => {
                let batch: Vec<InboundMessage> = specs.iter().flat_map(messages).collect();
                if batched {
                    db.place(&batch, &policy);
                } else {
                    // One message per batch, with the clock of the batch.
                    let clock = db.clock;
                    for m in &batch {
                        db.clock = clock;
                        db.place(std::slice::from_ref(m), &policy);
                    }
                }
            }
            agent => db.act(agent),
        }
        db.check_invariants()?;
    }
    Ok(db)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_batch_places_its_messages_exactly_as_one_at_a_time(steps in steps()) {
        let one_by_one = run(&steps, false)?;
        let batched = run(&steps, true)?;
        prop_assert_eq!(batched.canonical(), one_by_one.canonical());
    }

    #[test]
    fn replaying_every_batch_changes_nothing(steps in steps()) {
        let mut db = run(&steps, true)?;
        let before = db.canonical();
        for step in &steps {
            if let Step::Batch(specs) = step {
                let batch: Vec<InboundMessage> = specs.iter().flat_map(messages).collect();
                db.place(&batch, &Policy::default());
            }
        }
        prop_assert_eq!(db.canonical(), before);
    }
}
