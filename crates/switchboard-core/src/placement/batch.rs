//! Placing a whole batch at once, still without IO: the store fetches a
//! [`Snapshot`] of every fact the batch can need (under the batch's locks),
//! [`plan_batch`] places the messages one after another against that
//! snapshot plus what the earlier messages of the batch did, and returns the
//! rows to write. The store then writes them with a handful of set-based
//! statements, so a batch costs the same few round trips whatever its size.
//!
//! Placing against the snapshot gives the same result as placing each
//! message against the database in turn: the locks keep every fact the batch
//! reads from changing under it, and the overlay below carries the batch's own
//! writes forward.

use super::late_parent::{self, Action, Shape, ThreadMessage};
use super::senders;
use super::{place, sibling_links, Conversation, CopyHolder, Customer, Facts, Plan, Policy, Rule, Status, Target};
use crate::domain::{domain_of, Channel, ExternalId, InboundMessage};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// A stored message's identity: its channel, the endpoint it came in on,
/// and its external id (email: the Message-ID). Unique in the store (I2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKey {
    pub channel: Channel,
    pub endpoint: String,
    pub external_id: ExternalId,
}

impl MessageKey {
    pub fn new(channel: Channel, endpoint: impl Into<String>, external_id: impl Into<ExternalId>) -> MessageKey {
        MessageKey { channel, endpoint: endpoint.into(), external_id: external_id.into() }
    }

    /// The key of a message's own id.
    pub fn of(msg: &InboundMessage) -> MessageKey {
        MessageKey::new(msg.channel, msg.endpoint.as_str(), msg.external_id.clone())
    }

    /// The key of a message `msg` names (a reference candidate): ids are
    /// unique per channel and endpoint, so a reference is too.
    pub fn named_by(msg: &InboundMessage, id: &ExternalId) -> MessageKey {
        MessageKey::new(msg.channel, msg.endpoint.as_str(), id.clone())
    }
}

/// A pair: the channel, our endpoint and the customer's contact. I1 holds
/// per pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairKey {
    pub channel: Channel,
    pub endpoint: String,
    pub contact: String,
}

impl PairKey {
    pub fn new(channel: Channel, endpoint: impl Into<String>, contact: impl Into<String>) -> PairKey {
        PairKey { channel, endpoint: endpoint.into(), contact: contact.into() }
    }

    /// The pair a message came in on.
    pub fn of(msg: &InboundMessage) -> PairKey {
        PairKey::new(msg.channel, msg.endpoint.as_str(), msg.contact.as_str())
    }
}

/// A conversation row as far as placement cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConversationRow {
    pub conversation: Conversation,
    pub merged_into: Option<Uuid>,
}

/// One conversation holding a copy of an email, with its status for the audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    pub conversation_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub status: Status,
}

/// Everything the batch may need to know, as the store found it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The database clock after the locks were taken.
    pub now: DateTime<Utc>,
    /// Stored messages among the batch's own keys and its reference
    /// candidates, with their conversation.
    pub messages: HashMap<MessageKey, Uuid>,
    /// Conversations bound to each of the batch's pairs.
    pub pairs: HashMap<PairKey, Vec<Uuid>>,
    /// Every conversation named above, and every one on their merge chains.
    pub conversations: HashMap<Uuid, ConversationRow>,
    /// Known customers by (channel, contact).
    pub customers: HashMap<(Channel, String), Customer>,
    /// Conversations already holding inbound copies of the batch's emails,
    /// by external id.
    pub holders: HashMap<ExternalId, Vec<Holder>>,
    /// `related` links that exist among those holders.
    pub related_links: BTreeSet<(Uuid, Uuid)>,
    /// R1r: for the (channel, endpoint, external id) of each batch message,
    /// the conversations of stored messages at that endpoint whose
    /// references name that id, earliest stored first.
    pub replies: HashMap<MessageKey, Vec<Uuid>>,
    /// Sender policy: (conversation, address) where the address took part
    /// in the conversation (a contact of its pairs, the contact or a
    /// recipient of one of its messages), asked for the batch's email
    /// senders and the conversations their references resolve to.
    pub participants: HashSet<(Uuid, String)>,
    /// The same by domain: (conversation, domain).
    pub participant_domains: HashSet<(Uuid, String)>,
    /// R8: the shape of conversations that may hold replies to the batch's
    /// messages (those in `replies`, and when the batch holds replies to
    /// its own messages every conversation above), read only where R8
    /// could merge them (see [`Shape`]); the others are linked.
    pub threads: HashMap<Uuid, Shape>,
}

impl Snapshot {
    /// The conversations from `id` along its merge chain to its end, as far
    /// as the snapshot knows it (64 hops at most; an agent's cycle is cut).
    pub fn chain(&self, mut id: Uuid) -> Vec<Uuid> {
        let mut out = vec![id];
        for _ in 0..64 {
            match self.conversations.get(&id).and_then(|r| r.merged_into) {
                Some(next) if !out.contains(&next) => {
                    out.push(next);
                    id = next;
                }
                _ => break,
            }
        }
        out
    }
}

/// A conversation to insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewConversationRow {
    pub id: Uuid,
    pub topic: String,
    pub customer_id: Option<Uuid>,
    /// Copy `form`, `queue` and `priority` from this one.
    pub copy_from: Option<Uuid>,
    pub pair: PairKey,
    pub created_at: DateTime<Utc>,
}

/// A message to insert: the batch item it comes from and where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRow {
    pub item: usize,
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// The conversation's status when the message reached it: `None` when
    /// the message started it.
    pub status_before: Option<Status>,
    /// ...and once it was placed (`open` after a reopen; a reply appended
    /// to a closed conversation leaves it closed).
    pub status_after: Status,
}

/// How a touched conversation changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConversationUpdate {
    pub id: Uuid,
    pub reopen: bool,
    pub last_message_at: DateTime<Utc>,
}

/// What an audit row the plan writes records (`conversation_events.kind`;
/// `linked` rows are written by the store for the links it inserts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditKind {
    Created,
    FollowUpStarted,
    Reopened,
    Merged,
}

impl AuditKind {
    /// The value in `conversation_events.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Created => "created",
            AuditKind::FollowUpStarted => "follow_up_started",
            AuditKind::Reopened => "reopened",
            AuditKind::Merged => "merged",
        }
    }
}

/// A link's kind (`conversation_links.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// R2: a follow-up of a closed conversation (I3: one per conversation).
    FollowUp,
    /// R7 siblings, R1r and R8's links, automatic replies (I6).
    Related,
}

impl LinkKind {
    /// The value in `conversation_links.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::FollowUp => "follow_up",
            LinkKind::Related => "related",
        }
    }
}

/// An audit row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub conversation_id: Uuid,
    pub kind: AuditKind,
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub message_id: Uuid,
    pub related: Option<Uuid>,
}

/// A link to insert unless it exists. When it is inserted and `event` is
/// set, a `linked` event with that status is written for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRow {
    pub from: Uuid,
    pub to: Uuid,
    pub kind: LinkKind,
    pub cause: Uuid,
    pub event: Option<Status>,
    /// R7 (copies of one email) is the reason for this link. Only such links
    /// are ever deleted, and only once no Message-ID calls for them; a link
    /// any other rule made (R1r) stays.
    pub sibling: bool,
}

/// R8: a conversation to merge into another, as an agent's merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergeRow {
    pub from: Uuid,
    pub into: Uuid,
}

/// What happened to each item, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemResult {
    Duplicate,
    Placed { rule: Rule, conversation_id: Uuid, message_id: Uuid, created: bool },
}

/// The rows a batch writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchPlan {
    pub results: Vec<ItemResult>,
    pub new_conversations: Vec<NewConversationRow>,
    pub messages: Vec<MessageRow>,
    pub updates: Vec<ConversationUpdate>,
    pub events: Vec<EventRow>,
    pub links: Vec<LinkRow>,
    /// `related` links one Message-ID no longer calls for (R7, when its main
    /// conversation changed). The store deletes each only when no other
    /// Message-ID calls for it either and no other rule made it: links are
    /// the union over every Message-ID.
    pub stale_siblings: Vec<(Uuid, Uuid)>,
    /// Messages whose sender the policy refused to join a conversation
    /// they referenced (counted in metrics).
    pub sender_refusals: u64,
    /// R8: conversations merged into their late parent's, in order.
    pub merges: Vec<MergeRow>,
}

/// Places `messages` in order against `snapshot`. `new_id` makes ids (the
/// store passes UUIDv7s; tests pass a counter).
pub fn plan_batch(
    messages: &[&InboundMessage],
    mut snapshot: Snapshot,
    policy: &Policy,
    mut new_id: impl FnMut() -> Uuid,
) -> BatchPlan {
    let mut plan = BatchPlan::default();
    let mut updates: BTreeMap<Uuid, ConversationUpdate> = BTreeMap::new();
    let mut follow_ups: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
    let mut related: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
    let mut emails: BTreeMap<ExternalId, Uuid> = BTreeMap::new();
    // Shapes need carrying forward only when a later message of the batch
    // may be the parent of an earlier one, or when the store read some.
    let track_threads = !snapshot.threads.is_empty() || replies_within(messages);
    for (item, msg) in messages.iter().enumerate() {
        let facts = facts(&snapshot, msg, policy);
        let placement = match place(msg, &facts, policy, snapshot.now) {
            Plan::Duplicate => {
                plan.results.push(ItemResult::Duplicate);
                continue;
            }
            Plan::Place(p) => p,
        };
        let message_id = new_id();
        let pair = PairKey::of(msg);
        let (conversation_id, created) = match &placement.target {
            Target::Existing(conv) => (conv.id, false),
            Target::New(new) => {
                let id = new_id();
                // Strictly increasing within the batch, so "earliest created"
                // follows the order messages were placed in.
                let created_at = snapshot.now + Duration::microseconds(plan.new_conversations.len() as i64);
                let conversation = Conversation { id, status: Status::Open, created_at, closed_at: None };
                snapshot.conversations.insert(id, ConversationRow { conversation, merged_into: None });
                snapshot.pairs.entry(pair.clone()).or_default().push(id);
                plan.new_conversations.push(NewConversationRow {
                    id,
                    topic: new.topic.clone(),
                    customer_id: new.customer_id,
                    copy_from: new.copy_from,
                    pair: pair.clone(),
                    created_at,
                });
                let kind =
                    if placement.follow_up_of.is_some() { AuditKind::FollowUpStarted } else { AuditKind::Created };
                plan.events.push(EventRow {
                    conversation_id: id,
                    kind,
                    from_status: None,
                    to_status: Status::Open,
                    message_id,
                    related: placement.follow_up_of,
                });
                (id, true)
            }
        };
        let row = snapshot.conversations.get_mut(&conversation_id);
        let before = row.as_ref().map_or(Status::Open, |r| r.conversation.status);
        if placement.reopen {
            if let Some(row) = row {
                row.conversation.status = Status::Open;
            }
            plan.events.push(EventRow {
                conversation_id,
                kind: AuditKind::Reopened,
                from_status: Some(before),
                to_status: Status::Open,
                message_id,
                related: None,
            });
        }
        let update = updates.entry(conversation_id).or_insert(ConversationUpdate {
            id: conversation_id,
            reopen: false,
            last_message_at: msg.received_at,
        });
        update.reopen |= placement.reopen;
        update.last_message_at = update.last_message_at.max(msg.received_at);
        if let Some(closed) = placement.follow_up_of {
            if follow_ups.insert((conversation_id, closed)) {
                let status = if placement.reopen { Status::Open } else { before };
                plan.links.push(LinkRow {
                    from: conversation_id,
                    to: closed,
                    kind: LinkKind::FollowUp,
                    cause: message_id,
                    event: (!created).then_some(status),
                    sibling: false,
                });
            }
        }
        if !facts.refused.is_empty() {
            plan.sender_refusals += 1;
        }
        for to in &placement.related_to {
            if related.insert(unordered(conversation_id, *to)) {
                let status =
                    snapshot.conversations.get(&conversation_id).map_or(Status::Open, |r| r.conversation.status);
                plan.links.push(LinkRow {
                    from: conversation_id,
                    to: *to,
                    kind: LinkKind::Related,
                    cause: message_id,
                    event: Some(status),
                    sibling: false,
                });
            }
        }
        // The sender policy for messages later in the batch: this one's
        // sender and recipients now took part in its conversation.
        if msg.channel == Channel::Email {
            for address in senders::participants_of(msg) {
                snapshot.participants.insert((conversation_id, address.to_owned()));
                snapshot.participant_domains.insert((conversation_id, domain_of(address).to_owned()));
            }
        }
        // R1r for messages later in the batch: this one now names its parents.
        let mut named: Vec<&ExternalId> = msg.reference_candidates().collect();
        named.sort_unstable();
        named.dedup();
        for parent in &named {
            let key = MessageKey::named_by(msg, parent);
            snapshot.replies.entry(key).or_default().push(conversation_id);
        }
        // R8 for messages later in the batch: what this conversation holds.
        if track_threads {
            if created {
                let created_at =
                    snapshot.conversations.get(&conversation_id).map_or(snapshot.now, |r| r.conversation.created_at);
                let shape = Shape { untouched: placement.follow_up_of.is_none(), created_at, messages: Vec::new() };
                snapshot.threads.insert(conversation_id, shape);
            }
            let named_in: Vec<Uuid> =
                named.iter().filter_map(|n| snapshot.messages.get(&MessageKey::named_by(msg, n))).copied().collect();
            if let Some(shape) = snapshot.threads.get_mut(&conversation_id) {
                // A customer who reopened it was answered by an agent before.
                shape.untouched &= !placement.reopen;
                shape.messages.push(ThreadMessage {
                    id: msg.external_id.clone(),
                    names: named.iter().map(|n| (*n).clone()).collect(),
                    sender: msg.contact.to_string(),
                    named_in,
                });
            }
        }
        late_parent(&mut snapshot, msg, conversation_id, message_id, placement.rule, policy, &mut related, &mut plan);
        snapshot.messages.insert(MessageKey::of(msg), conversation_id);
        if msg.channel == Channel::Email {
            let status = snapshot.conversations.get(&conversation_id).map_or(Status::Open, |r| r.conversation.status);
            let created_at =
                snapshot.conversations.get(&conversation_id).map_or(snapshot.now, |r| r.conversation.created_at);
            snapshot.holders.entry(msg.external_id.clone()).or_default().push(Holder {
                conversation_id,
                created_at,
                status,
            });
            emails.entry(msg.external_id.clone()).or_insert(message_id);
        }
        plan.messages.push(MessageRow {
            item,
            id: message_id,
            conversation_id,
            status_before: (!created).then_some(before),
            status_after: if placement.reopen { Status::Open } else { before },
        });
        plan.results.push(ItemResult::Placed { rule: placement.rule, conversation_id, message_id, created });
    }
    plan.updates = updates.into_values().collect();
    for (external_id, cause) in emails {
        link_siblings(&snapshot, &external_id, cause, &mut plan);
    }
    plan
}

/// Whether a message of the batch names another message of the batch.
pub fn replies_within(messages: &[&InboundMessage]) -> bool {
    let own: HashSet<MessageKey> = messages.iter().map(|m| MessageKey::of(m)).collect();
    messages.iter().any(|m| m.reference_candidates().any(|r| own.contains(&MessageKey::named_by(m, r))))
}

/// R8 for `msg`, which landed in `landed` as `message_id`: the
/// conversations holding its replies that came first are merged into
/// `landed` or linked `related` to it (see [`late_parent`]), and the
/// snapshot is carried forward as the store will leave it.
#[allow(clippy::too_many_arguments)]
fn late_parent(
    snapshot: &mut Snapshot,
    msg: &InboundMessage,
    landed: Uuid,
    message_id: Uuid,
    rule: Rule,
    policy: &Policy,
    related: &mut BTreeSet<(Uuid, Uuid)>,
    plan: &mut BatchPlan,
) {
    let Some(ids) = snapshot.replies.get(&MessageKey::of(msg)) else { return };
    let Some(conversation) = snapshot.conversations.get(&landed).map(|r| r.conversation) else { return };
    let of_the_thread = match rule {
        Rule::ReplyOngoing | Rule::New | Rule::NewFollowUp | Rule::ReplyClosedFollowUp => true,
        Rule::RepliesFirst => {
            snapshot.threads.get(&landed).is_some_and(|s| late_parent::holds_only_the_thread(s, &msg.external_id))
        }
        Rule::SamePair | Rule::ReplyClosedAppended | Rule::ReplyClosedAutomatic | Rule::Duplicate => false,
    };
    let target = late_parent::Target { conversation, of_the_thread };
    let actions = {
        let snap = &*snapshot;
        let holders: Vec<late_parent::Holder<'_>> = ids
            .iter()
            .filter_map(|id| {
                let end = end(snap, *id)?;
                let shape = snap.threads.get(&end.id);
                let admitted = shape.is_some_and(|s| {
                    s.messages.iter().all(|m| senders::may_join(snap, &msg.endpoint, &m.sender, landed, policy))
                });
                Some(late_parent::Holder { end, shape, admitted })
            })
            .collect();
        // A message names one already in the target: held there (after
        // merges) as the snapshot knew it, or as the batch placed it.
        let ends_in_target = |c: &Uuid| *c == landed || end(snap, *c).is_some_and(|e| e.id == landed);
        let joins_target = |m: &ThreadMessage| {
            m.named_in.iter().any(ends_in_target)
                || m.names.iter().any(|n| snap.messages.get(&MessageKey::named_by(msg, n)).is_some_and(ends_in_target))
        };
        late_parent::decide(&msg.external_id, &target, &holders, &joins_target, policy.late_parent_window, snapshot.now)
    };
    for action in actions {
        match action {
            Action::Merge(from) => {
                if let Some(row) = snapshot.conversations.get_mut(&from) {
                    row.merged_into = Some(landed);
                    row.conversation.status = Status::Closed;
                    row.conversation.closed_at = Some(snapshot.now);
                }
                // What was merged now counts as the target's: its messages
                // for R8, its participants for the sender policy.
                if let Some(merged) = snapshot.threads.remove(&from) {
                    if let Some(shape) = snapshot.threads.get_mut(&landed) {
                        shape.messages.extend(merged.messages);
                    }
                }
                let moved: Vec<String> =
                    snapshot.participants.iter().filter(|(c, _)| *c == from).map(|(_, a)| a.clone()).collect();
                snapshot.participants.extend(moved.into_iter().map(|a| (landed, a)));
                let moved: Vec<String> =
                    snapshot.participant_domains.iter().filter(|(c, _)| *c == from).map(|(_, d)| d.clone()).collect();
                snapshot.participant_domains.extend(moved.into_iter().map(|d| (landed, d)));
                plan.merges.push(MergeRow { from, into: landed });
                plan.events.push(EventRow {
                    conversation_id: from,
                    kind: AuditKind::Merged,
                    from_status: Some(Status::Open),
                    to_status: Status::Closed,
                    message_id,
                    related: Some(landed),
                });
            }
            Action::Link(from) => {
                // A to B and B to A are one link (I5): two parents in one
                // batch whose replies sit in each other's conversations link
                // them once.
                if related.insert(unordered(from, landed)) {
                    let status = snapshot.conversations.get(&from).map_or(Status::Open, |r| r.conversation.status);
                    plan.links.push(LinkRow {
                        from,
                        to: landed,
                        kind: LinkKind::Related,
                        cause: message_id,
                        event: Some(status),
                        sibling: false,
                    });
                }
            }
        }
    }
}

/// R7 for one Message-ID: the links its holders must have, and the existing
/// links among them it no longer calls for. Every wanted link is written
/// even when the snapshot has it: another batch may delete it meanwhile
/// (it no longer needed it), and the insert, done under the link's lock,
/// restores it.
fn link_siblings(snapshot: &Snapshot, external_id: &ExternalId, cause: Uuid, plan: &mut BatchPlan) {
    let holders = snapshot.holders.get(external_id).map(Vec::as_slice).unwrap_or_default();
    let copies: Vec<CopyHolder> =
        holders.iter().map(|h| CopyHolder { conversation_id: h.conversation_id, created_at: h.created_at }).collect();
    let wanted: BTreeSet<(Uuid, Uuid)> = sibling_links(&copies).into_iter().collect();
    let ids: BTreeSet<Uuid> = copies.iter().map(|c| c.conversation_id).collect();
    for (from, to) in &snapshot.related_links {
        if ids.contains(from) && ids.contains(to) && !wanted.contains(&(*from, *to)) {
            plan.stale_siblings.push((*from, *to));
        }
    }
    for (from, to) in wanted {
        let status = holders.iter().find(|h| h.conversation_id == from).map_or(Status::Open, |h| h.status);
        plan.links.push(LinkRow { from, to, kind: LinkKind::Related, cause, event: Some(status), sibling: true });
    }
}

/// A pair of conversations in a fixed order, for links that count the same
/// both ways.
fn unordered(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Follows `merged_into` to the end of the chain (64 hops at most: a longer
/// chain is an agent's cycle and is cut there).
fn end(snapshot: &Snapshot, mut id: Uuid) -> Option<Conversation> {
    for _ in 0..64 {
        let row = snapshot.conversations.get(&id)?;
        match row.merged_into {
            Some(next) if snapshot.conversations.contains_key(&next) => id = next,
            _ => return Some(row.conversation),
        }
    }
    snapshot.conversations.get(&id).map(|r| r.conversation)
}

/// The facts of contract section 3 for one message, from the snapshot.
fn facts(snapshot: &Snapshot, msg: &InboundMessage, policy: &Policy) -> Facts {
    if snapshot.messages.contains_key(&MessageKey::of(msg)) {
        return Facts { duplicate: true, ..Facts::default() };
    }
    // A reference resolves only when the sender may join its conversation;
    // a refused one counts as not resolving, and is remembered for a link.
    let mut references = HashMap::new();
    let mut refused: Vec<Conversation> = Vec::new();
    for r in msg.reference_candidates() {
        let Some(holder) = snapshot.messages.get(&MessageKey::named_by(msg, r)) else { continue };
        let Some(conv) = end(snapshot, *holder) else { continue };
        if senders::admitted(snapshot, msg, *holder, policy) {
            references.insert(r.clone(), conv);
        } else if !refused.iter().any(|c| c.id == conv.id) {
            refused.push(conv);
        }
    }
    refused.sort_by_key(|c| c.id);
    let mut bound: Vec<ConversationRow> = snapshot
        .pairs
        .get(&PairKey::of(msg))
        .map(|ids| ids.iter().filter_map(|id| snapshot.conversations.get(id).copied()).collect())
        .unwrap_or_default();
    // Newest first: the first match of each kind below is the latest.
    bound.sort_by_key(|r| std::cmp::Reverse((r.conversation.created_at, r.conversation.id)));
    bound.dedup_by_key(|r| r.conversation.id);
    let direct = bound.iter().find(|r| r.merged_into.is_none() && r.conversation.is_ongoing()).map(|r| r.conversation);
    let through = bound.iter().filter_map(|r| end(snapshot, r.conversation.id)).find(Conversation::is_ongoing);
    let pair_ongoing = direct.or(through);
    let pair_latest_closed = match pair_ongoing {
        Some(_) => None,
        None => bound.first().and_then(|r| end(snapshot, r.conversation.id)),
    };
    let customer = snapshot.customers.get(&(msg.channel, msg.contact.to_string())).cloned();
    let replies_first = snapshot
        .replies
        .get(&MessageKey::of(msg))
        .map(|convs| convs.iter().filter_map(|c| end(snapshot, *c)).collect())
        .unwrap_or_default();
    Facts { duplicate: false, references, pair_ongoing, pair_latest_closed, customer, replies_first, refused }
}
