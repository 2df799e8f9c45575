//! Property tests of the decision table as the store runs it
//! ([`plan_batch`]): random batches of customer messages and random agent
//! actions against a simple in-memory database. After every step I1, I2, I3
//! and I5 hold; a replay changes nothing (I4); and placing messages in
//! batches of any size ends exactly as placing them one at a time.

use super::batch::*;
use super::*;
use crate::domain::{Address, Details, ExternalId};
use chrono::TimeZone;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// The tables of an in-memory database, written the way the store writes.
#[derive(Default)]
struct Db {
    convs: BTreeMap<Uuid, ConversationRow>,
    bindings: Vec<(PairKey, Uuid)>,
    messages: BTreeMap<MessageKey, Uuid>,
    /// The message that created each conversation: its name across runs.
    creator: BTreeMap<Uuid, MessageKey>,
    links: BTreeSet<(Uuid, Uuid, &'static str)>,
    /// Every message key ever sent, for I2.
    sent: BTreeSet<MessageKey>,
    clock: i64,
    next_id: u128,
}

/// Messages by key to their conversation, conversations (named by their
/// creating message) to status and merge target, and links.
type Canonical = (
    BTreeMap<MessageKey, MessageKey>,
    BTreeMap<MessageKey, (Status, Option<MessageKey>)>,
    BTreeSet<(MessageKey, MessageKey, &'static str)>,
);

#[derive(Clone, Debug)]
enum Step {
    Batch(Vec<(u8, u8, u8, u8, Option<u8>, bool)>),
    Close(u8),
    Merge(u8, u8),
    Status(u8, Status),
}

fn message(spec: &(u8, u8, u8, u8, Option<u8>, bool)) -> InboundMessage {
    let (channel, endpoint, contact, id, reply_to, auto) = *spec;
    let channel = [Channel::Email, Channel::Sms, Channel::Messenger][channel as usize % 3];
    let (endpoint, contact) = match channel {
        Channel::Email => (format!("inbox{endpoint}@acme.test"), format!("c{contact}@example.com")),
        Channel::Sms => (format!("80{endpoint}"), format!("38591{contact}")),
        Channel::Messenger => (format!("page{endpoint}"), format!("psid{contact}")),
    };
    InboundMessage {
        channel,
        endpoint: Address::for_channel(channel, &endpoint).unwrap(),
        contact: Address::for_channel(channel, &contact).unwrap(),
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

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let msg = (0..3u8, 0..2u8, 0..3u8, 0..10u8, proptest::option::of(0..10u8), proptest::bool::weighted(0.15));
    let step = prop_oneof![
        4 => proptest::collection::vec(msg, 1..8).prop_map(Step::Batch),
        1 => (0..8u8).prop_map(Step::Close),
        1 => (0..8u8, 0..8u8).prop_map(|(a, b)| Step::Merge(a, b)),
        1 => (0..8u8, prop_oneof![Just(Status::Waiting), Just(Status::Solved), Just(Status::Pending)]).prop_map(|(c, s)| Step::Status(c, s)),
    ];
    proptest::collection::vec(step, 1..25)
}

impl Db {
    fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + self.clock * 10, 0).unwrap()
    }

    /// What the store's snapshot queries return (a superset is harmless:
    /// the planner looks facts up by key).
    fn snapshot(&self, batch: &[&InboundMessage]) -> Snapshot {
        let mut pairs: HashMap<PairKey, Vec<Uuid>> = HashMap::new();
        for (pair, id) in &self.bindings {
            pairs.entry(pair.clone()).or_default().push(*id);
        }
        let mut holders: HashMap<String, Vec<Holder>> = HashMap::new();
        for ((channel, _, id), conv) in &self.messages {
            if *channel == Channel::Email && batch.iter().any(|m| m.external_id.as_str() == id) {
                let c = self.convs[conv].conversation;
                holders.entry(id.clone()).or_default().push(Holder {
                    conversation_id: *conv,
                    created_at: c.created_at,
                    status: c.status,
                });
            }
        }
        let related_links = self.links.iter().filter(|l| l.2 == "related").map(|l| (l.0, l.1)).collect();
        Snapshot {
            now: self.now(),
            messages: self.messages.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            pairs,
            conversations: self.convs.iter().map(|(k, v)| (*k, *v)).collect(),
            customers: HashMap::new(),
            holders,
            related_links,
        }
    }

    fn place(&mut self, batch: &[InboundMessage], policy: &Policy) {
        self.clock += 1;
        let refs: Vec<&InboundMessage> = batch.iter().collect();
        self.sent.extend(batch.iter().map(|m| (m.channel, m.endpoint.to_string(), m.external_id.to_string())));
        let snapshot = self.snapshot(&refs);
        let mut next = self.next_id;
        let plan = plan_batch(&refs, snapshot, policy, || {
            next += 1;
            Uuid::from_u128(next)
        });
        self.next_id = next;
        for c in &plan.new_conversations {
            let conversation =
                Conversation { id: c.id, status: Status::Open, created_at: c.created_at, closed_at: None };
            self.convs.insert(c.id, ConversationRow { conversation, merged_into: None });
            self.bindings.push((c.pair.clone(), c.id));
        }
        for m in &plan.messages {
            let msg = &batch[m.item];
            let key = (msg.channel, msg.endpoint.to_string(), msg.external_id.to_string());
            self.creator.entry(m.conversation_id).or_insert_with(|| key.clone());
            self.messages.insert(key, m.conversation_id);
        }
        for u in plan.updates.iter().filter(|u| u.reopen) {
            self.convs.get_mut(&u.id).unwrap().conversation.status = Status::Open;
        }
        for (from, to) in &plan.unlinks {
            self.links.remove(&(*from, *to, "related"));
        }
        for l in &plan.links {
            self.links.insert((l.from, l.to, l.kind));
        }
    }

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
        let links = self.links.iter().map(|(a, b, k)| (name(a), name(b), *k)).collect();
        (messages, convs, links)
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let mut seen = BTreeSet::new();
        for (pair, id) in &self.bindings {
            let r = self.convs[id];
            if r.merged_into.is_none() && r.conversation.is_ongoing() {
                prop_assert!(seen.insert(pair.clone()), "I1: {pair:?} has two ongoing conversations");
            }
        }
        // I2: every message sent is stored, once (the map has one row per key).
        prop_assert!(self.messages.keys().eq(self.sent.iter()), "I2: stored messages differ from those sent");
        // I5: the related links are exactly those the sibling sets call for.
        let mut holders: BTreeMap<&str, Vec<CopyHolder>> = BTreeMap::new();
        for ((channel, _, id), conv) in &self.messages {
            if *channel == Channel::Email {
                let created_at = self.convs[conv].conversation.created_at;
                holders.entry(id).or_default().push(CopyHolder { conversation_id: *conv, created_at });
            }
        }
        let wanted: BTreeSet<(Uuid, Uuid)> = holders.values().flat_map(|h| sibling_links(h)).collect();
        let related: BTreeSet<(Uuid, Uuid)> =
            self.links.iter().filter(|l| l.2 == "related").map(|l| (l.0, l.1)).collect();
        prop_assert_eq!(related, wanted, "I5");
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
                let batch: Vec<InboundMessage> = specs.iter().map(message).collect();
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
                let batch: Vec<InboundMessage> = specs.iter().map(message).collect();
                db.place(&batch, &Policy::default());
            }
        }
        prop_assert_eq!(db.canonical(), before);
    }
}
