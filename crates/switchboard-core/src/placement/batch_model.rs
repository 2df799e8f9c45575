//! A simple in-memory database for the property tests: the tables the store
//! writes, applied the way the store applies a [`BatchPlan`] (including the
//! SQL-side rule that a stale sibling link is deleted only when no
//! Message-ID calls for it and no other rule made it), plus the agent
//! desktop's actions of contract section 4.

use super::batch::*;
use super::*;
use chrono::TimeZone;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A related or follow-up link: (from, to, kind).
pub(super) type Link = (Uuid, Uuid, &'static str);

#[derive(Default)]
pub(super) struct Db {
    pub convs: BTreeMap<Uuid, ConversationRow>,
    pub bindings: Vec<(PairKey, Uuid)>,
    pub messages: BTreeMap<MessageKey, Uuid>,
    /// Every stored message's references, in the order they were stored.
    pub stored: Vec<(MessageKey, Vec<ExternalId>)>,
    /// The message that created each conversation: its name across runs.
    pub creator: BTreeMap<Uuid, MessageKey>,
    pub links: BTreeSet<Link>,
    /// `related` links R7 alone is the reason for (`sibling_only`).
    pub sibling_only: BTreeSet<(Uuid, Uuid)>,
    /// Every message key ever sent, for I2.
    pub sent: BTreeSet<MessageKey>,
    /// (conversation, address) of every stored message's sender and
    /// recipients, for the sender policy.
    pub took_part: BTreeSet<(Uuid, String)>,
    /// Each stored message's sender.
    pub senders: BTreeMap<MessageKey, String>,
    /// Conversations started as follow-ups (not R8's to merge).
    pub follow_ups: BTreeSet<Uuid>,
    /// Conversations a customer reopened (R5).
    pub reopened: BTreeSet<Uuid>,
    /// Conversations an agent assigned (or gave a queue or form).
    pub assigned: BTreeSet<Uuid>,
    /// R8's merges, (from, into), in order.
    pub merges: Vec<(Uuid, Uuid)>,
    /// The rule that placed each stored message.
    pub rules: BTreeMap<MessageKey, Rule>,
    pub clock: i64,
    pub next_id: u128,
}

impl Db {
    pub(super) fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + self.clock * 10, 0).unwrap()
    }

    /// What the store's snapshot queries return (a superset is harmless:
    /// the planner looks facts up by key).
    fn snapshot(&self, batch: &[&InboundMessage]) -> Snapshot {
        let mut pairs: HashMap<PairKey, Vec<Uuid>> = HashMap::new();
        for (pair, id) in &self.bindings {
            pairs.entry(pair.clone()).or_default().push(*id);
        }
        let mut holders: HashMap<ExternalId, Vec<Holder>> = HashMap::new();
        for (MessageKey { channel, external_id: id, .. }, conv) in &self.messages {
            if *channel == Channel::Email && batch.iter().any(|m| m.external_id == *id) {
                let c = self.convs[conv].conversation;
                holders.entry(id.clone()).or_default().push(Holder {
                    conversation_id: *conv,
                    created_at: c.created_at,
                    status: c.status,
                });
            }
        }
        let mut replies: HashMap<MessageKey, Vec<Uuid>> = HashMap::new();
        for (key, refs) in &self.stored {
            let MessageKey { channel, endpoint, .. } = key;
            let conv = self.messages[key];
            let mut named: Vec<&ExternalId> = refs.iter().collect();
            named.sort();
            named.dedup();
            for parent in named {
                replies.entry(MessageKey::new(*channel, endpoint.clone(), parent.clone())).or_default().push(conv);
            }
        }
        let related_links = self.links.iter().filter(|l| l.2 == "related").map(|l| (l.0, l.1)).collect();
        // As the store reads them: a participant of a conversation also
        // takes part in every one it was merged into.
        let mut participants: HashSet<(Uuid, String)> = HashSet::new();
        let direct =
            self.took_part.iter().cloned().chain(self.bindings.iter().map(|(pair, id)| (*id, pair.contact.clone())));
        for (mut id, address) in direct {
            for _ in 0..64 {
                if !participants.insert((id, address.clone())) {
                    break;
                }
                match self.convs.get(&id).and_then(|r| r.merged_into) {
                    Some(next) => id = next,
                    None => break,
                }
            }
        }
        let participant_domains =
            participants.iter().map(|(id, address)| (*id, crate::domain::domain_of(address).to_owned())).collect();
        let threads = self.convs.keys().filter_map(|id| Some((*id, self.shape(*id)?))).collect();
        Snapshot {
            now: self.now(),
            messages: self.messages.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            pairs,
            conversations: self.convs.iter().map(|(k, v)| (*k, *v)).collect(),
            customers: HashMap::new(),
            holders,
            related_links,
            replies,
            participants,
            participant_domains,
            threads,
        }
    }

    /// R8's shape of a conversation, as `THREADS_SQL` reads it: `None`
    /// unless nobody touched it.
    fn shape(&self, id: Uuid) -> Option<late_parent::Shape> {
        let row = self.convs[&id];
        let agent_merged_in = |member: &Uuid| !self.r8_merged().contains(member);
        let members = self.members(id);
        if row.conversation.status != Status::Open
            || row.merged_into.is_some()
            || self.follow_ups.contains(&id)
            || self.reopened.contains(&id)
            || self.assigned.contains(&id)
            || members.iter().filter(|m| **m != id).any(agent_merged_in)
        {
            return None;
        }
        let messages: Vec<late_parent::ThreadMessage> = self
            .stored
            .iter()
            .filter(|(key, _)| members.contains(&self.messages[key]))
            .map(|(key, names)| late_parent::ThreadMessage {
                id: key.external_id.clone(),
                names: names.clone(),
                sender: self.senders[key].clone(),
                named_in: names
                    .iter()
                    .filter_map(|n| self.messages.get(&MessageKey::new(key.channel, key.endpoint.clone(), n.clone())))
                    .flat_map(|c| self.chain(*c))
                    .collect(),
            })
            .collect();
        (messages.len() <= late_parent::MAX_MESSAGES).then_some(late_parent::Shape {
            untouched: true,
            created_at: row.conversation.created_at,
            messages,
        })
    }

    /// `id` and every conversation merged into it, directly or not.
    pub(super) fn members(&self, id: Uuid) -> BTreeSet<Uuid> {
        let mut out = BTreeSet::from([id]);
        loop {
            let more: Vec<Uuid> = self
                .convs
                .values()
                .filter(|r| r.merged_into.is_some_and(|m| out.contains(&m)) && !out.contains(&r.conversation.id))
                .map(|r| r.conversation.id)
                .collect();
            if more.is_empty() {
                return out;
            }
            out.extend(more);
        }
    }

    /// `id` and the conversations it was merged into, in order.
    fn chain(&self, mut id: Uuid) -> Vec<Uuid> {
        let mut out = vec![id];
        while let Some(next) = self.convs[&id].merged_into.filter(|n| !out.contains(n)) {
            out.push(next);
            id = next;
        }
        out
    }

    fn r8_merged(&self) -> BTreeSet<Uuid> {
        self.merges.iter().map(|(from, _)| *from).collect()
    }

    pub(super) fn place(&mut self, batch: &[InboundMessage], policy: &Policy) {
        self.clock += 1;
        let refs: Vec<&InboundMessage> = batch.iter().collect();
        self.sent.extend(batch.iter().map(MessageKey::of));
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
            if c.copy_from.is_some() {
                self.follow_ups.insert(c.id);
            }
        }
        for m in &plan.messages {
            let msg = &batch[m.item];
            let key = MessageKey::of(msg);
            self.creator.entry(m.conversation_id).or_insert_with(|| key.clone());
            self.messages.insert(key.clone(), m.conversation_id);
            self.senders.insert(key.clone(), msg.contact.to_string());
            if let ItemResult::Placed { rule, .. } = plan.results[m.item] {
                self.rules.insert(key.clone(), rule);
            }
            self.stored.push((key, msg.reference_candidates().cloned().collect()));
            for address in super::senders::participants_of(msg) {
                self.took_part.insert((m.conversation_id, address.to_owned()));
            }
        }
        for u in plan.updates.iter().filter(|u| u.reopen) {
            self.convs.get_mut(&u.id).unwrap().conversation.status = Status::Open;
            self.reopened.insert(u.id);
        }
        // As the agent's merge statement (R8).
        for m in &plan.merges {
            let now = self.now();
            let row = self.convs.get_mut(&m.from).unwrap();
            row.merged_into = Some(m.into);
            (row.conversation.status, row.conversation.closed_at) = (Status::Closed, Some(now));
            self.merges.push((m.from, m.into));
        }
        // As the store's DELETE: only R7's own links, only when no
        // Message-ID (after this batch's messages) calls for them.
        let needed = self.sibling_links_called_for();
        for link in &plan.stale_siblings {
            if self.sibling_only.contains(link) && !needed.contains(link) {
                self.links.remove(&(link.0, link.1, "related"));
                self.sibling_only.remove(link);
            }
        }
        // As the store's upsert: a related link stored either way is the
        // same link (I5); within a batch, the one another rule wants wins.
        let mut links: Vec<&LinkRow> = plan.links.iter().collect();
        links.sort_by_key(|l| l.sibling);
        for l in links {
            if l.kind != LinkKind::Related {
                self.links.insert((l.from, l.to, l.kind.as_str()));
                continue;
            }
            let stored =
                [(l.from, l.to), (l.to, l.from)].into_iter().find(|(a, b)| self.links.contains(&(*a, *b, "related")));
            match stored {
                None => {
                    self.links.insert((l.from, l.to, "related"));
                    if l.sibling {
                        self.sibling_only.insert((l.from, l.to));
                    }
                }
                Some(pair) if !l.sibling => {
                    self.sibling_only.remove(&pair);
                }
                Some(_) => {}
            }
        }
    }

    /// R7 in the contract's words, without the planner's code: for every
    /// Message-ID, each conversation holding an inbound copy other than the
    /// earliest created one (ties by id) links to that one.
    pub(super) fn sibling_links_called_for(&self) -> BTreeSet<(Uuid, Uuid)> {
        let mut by_id: BTreeMap<&str, BTreeSet<Uuid>> = BTreeMap::new();
        for (MessageKey { channel, external_id: id, .. }, conv) in &self.messages {
            if *channel == Channel::Email {
                by_id.entry(id.as_str()).or_default().insert(*conv);
            }
        }
        let mut out = BTreeSet::new();
        for holders in by_id.values() {
            let mut main: Option<Uuid> = None;
            for h in holders {
                let earlier = |m: &Uuid| {
                    let (a, b) = (self.convs[h].conversation.created_at, self.convs[m].conversation.created_at);
                    a < b || (a == b && h < m)
                };
                if main.as_ref().is_none_or(earlier) {
                    main = Some(*h);
                }
            }
            for h in holders {
                if Some(*h) != main {
                    out.insert((*h, main.expect("a non-empty set has a main holder")));
                }
            }
        }
        out
    }
}
