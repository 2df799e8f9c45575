//! The decision table of contract section 3, as pure code.
//!
//! [`place`] takes one decoded message and the [`Facts`] the store looked up
//! for it (under the locks that make those facts stable) and returns a
//! [`Plan`]: where the message lands, whether that conversation reopens,
//! whether a follow-up starts or is linked. [`sibling_links`] decides rule R7
//! once the message has landed. The store carries plans out; this module must
//! never import Kafka, SQL or a clock (the caller passes `now`).

use crate::domain::{Channel, ExternalId, InboundMessage};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub mod batch;
pub mod late_parent;
pub mod senders;

#[cfg(test)]
mod batch_model;
#[cfg(test)]
mod batch_properties;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_edges;
#[cfg(test)]
mod tests_senders;
#[cfg(test)]
mod thread_properties;

/// A conversation's status (contract section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Open,
    Waiting,
    Pending,
    Solved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 5] = [Status::Open, Status::Waiting, Status::Pending, Status::Solved, Status::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Waiting => "waiting",
            Status::Pending => "pending",
            Status::Solved => "solved",
            Status::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A conversation as the decision table needs to see it. When it comes from
/// a lookup that follows `merged_into`, this is the end of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub id: Uuid,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Conversation {
    /// Ongoing: not closed. (A chain's end has no `merged_into` by definition.)
    pub fn is_ongoing(&self) -> bool {
        self.status != Status::Closed
    }
}

/// A known customer from `person_contacts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub id: Uuid,
    pub name: Option<String>,
}

/// What the store knows about one message, looked up under its locks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// R0: the (channel, endpoint, external_id) is already stored.
    pub duplicate: bool,
    /// Every reference candidate that resolves to a message stored at the
    /// same endpoint, mapped to that message's conversation after
    /// following `merged_into`. Candidates that resolve to nothing are absent.
    pub references: HashMap<ExternalId, Conversation>,
    /// R3: the pair's ongoing conversation, directly or through `merged_into`.
    pub pair_ongoing: Option<Conversation>,
    /// R4: the pair's most recently created conversation, after following
    /// `merged_into`, when it is not ongoing.
    pub pair_latest_closed: Option<Conversation>,
    /// The customer known for the contact address, if any.
    pub customer: Option<Customer>,
    /// R1r: the conversations (after following `merged_into`) of the stored
    /// messages at the same endpoint that reference this message's id,
    /// earliest stored first; one entry per such message.
    pub replies_first: Vec<Conversation>,
    /// Conversations (after following `merged_into`) that references of
    /// this message resolve to but the sender policy refused: they count as
    /// not resolving, and where the message lands is linked to each.
    /// Sorted, without duplicates.
    pub refused: Vec<Conversation>,
}

/// The configurable part of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// R5: statuses a customer message sets back to `open`. `closed` is never
    /// in it (configuration refuses it).
    pub reopen: Vec<Status>,
    /// R4: how long after closing an SMS conversation a new message still
    /// starts a follow-up of it. `None` disables.
    pub sms_follow_up_window: Option<Duration>,
    /// R4: the same for Messenger.
    pub messenger_follow_up_window: Option<Duration>,
    /// Who may join a conversation by an email reference.
    pub reply_senders: SenderPolicy,
    /// The same per endpoint (normalized address), overriding the above.
    pub reply_senders_by_endpoint: BTreeMap<String, SenderPolicy>,
    /// R8: how recently a conversation started for replies that came first
    /// must have been created to be merged into their parent's. `None`
    /// never merges (only links).
    pub late_parent_window: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            reopen: vec![Status::Waiting, Status::Solved],
            sms_follow_up_window: Some(Duration::days(7)),
            messenger_follow_up_window: Some(Duration::days(7)),
            reply_senders: SenderPolicy::Participants,
            reply_senders_by_endpoint: BTreeMap::new(),
            late_parent_window: Some(Duration::hours(1)),
        }
    }
}

/// Who may join a conversation by replying to one of its emails (contract
/// section 3, sender policy). Message-IDs leak (quoted replies, forwards,
/// list archives), so a forged `In-Reply-To` must not put a stranger's
/// words into another customer's conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SenderPolicy {
    /// The sender's address took part in the conversation: a contact of
    /// one of its pairs, or a From, To or Cc of one of its messages.
    Participants,
    /// The sender's domain is a participant's domain.
    Domain,
    /// Every reference resolves (contract version 1).
    Any,
}

impl SenderPolicy {
    /// Reads a setting's value: `participants`, `domain` or `any`.
    pub fn parse(text: &str) -> Option<SenderPolicy> {
        match text.trim() {
            "participants" => Some(SenderPolicy::Participants),
            "domain" => Some(SenderPolicy::Domain),
            "any" => Some(SenderPolicy::Any),
            _ => None,
        }
    }
}

impl Policy {
    /// R4 applies the window to SMS and Messenger only; email threads by
    /// references instead.
    pub(crate) fn follow_up_window(&self, channel: Channel) -> Option<Duration> {
        match channel {
            Channel::Email => None,
            Channel::Sms => self.sms_follow_up_window,
            Channel::Messenger => self.messenger_follow_up_window,
        }
    }
}

/// Which row of the table placed the message; reported in metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// R0.
    Duplicate,
    /// R1: a reply into its ongoing conversation.
    ReplyOngoing,
    /// R1r: a message whose replies were stored before it, joining the
    /// conversation of the earliest of them.
    RepliesFirst,
    /// R2: a reply to a closed conversation, appended to the pair's ongoing one.
    ReplyClosedAppended,
    /// R2: a reply to a closed conversation that starts a follow-up.
    ReplyClosedFollowUp,
    /// R2 with R6: an automatic reply to a closed conversation.
    ReplyClosedAutomatic,
    /// R3.
    SamePair,
    /// R4.
    New,
    /// R4 within the follow-up window.
    NewFollowUp,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Duplicate => "r0_duplicate",
            Rule::ReplyOngoing => "r1_reply_ongoing",
            Rule::RepliesFirst => "r1r_replies_first",
            Rule::ReplyClosedAppended => "r2_reply_closed_appended",
            Rule::ReplyClosedFollowUp => "r2_reply_closed_follow_up",
            Rule::ReplyClosedAutomatic => "r2_reply_closed_automatic",
            Rule::SamePair => "r3_same_pair",
            Rule::New => "r4_new",
            Rule::NewFollowUp => "r4_new_follow_up",
        }
    }
}

/// Where a message lands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An existing conversation (the end of its merge chain).
    Existing(Conversation),
    /// A conversation created for the message's pair.
    New(NewConversation),
}

/// A conversation to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewConversation {
    /// `Talking with <customer name, or the contact address>`.
    pub topic: String,
    pub customer_id: Option<Uuid>,
    /// A follow-up copies `form`, `queue` and `priority` from this closed one.
    pub copy_from: Option<Uuid>,
}

/// What to do with one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// R0: change nothing.
    Duplicate,
    Place(Placement),
}

/// How a message that is not a duplicate is placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub rule: Rule,
    pub target: Target,
    /// R5: set the existing target back to `open` (from its current status).
    pub reopen: bool,
    /// R2/R4: link the conversation the message lands in `follow_up` to this
    /// closed one.
    pub follow_up_of: Option<Uuid>,
    /// Conversations the one the message lands in is linked `related` to:
    /// those it referenced but may not join (sender policy), and the closed
    /// one an automatic reply answers when it lands with the pair's ongoing
    /// conversation (I6). Sorted, without duplicates.
    pub related_to: Vec<Uuid>,
}

/// Places one message by the first rule that applies (R0, R1, R2, R1r, R3,
/// R4, then R5 and R6). `now` is the processing clock: it bounds the
/// message's receive time for the R4 window.
pub fn place(msg: &InboundMessage, facts: &Facts, policy: &Policy, now: DateTime<Utc>) -> Plan {
    if facts.duplicate {
        return Plan::Duplicate;
    }
    let automatic = msg.auto_generated;
    // The first candidate that resolves decides, in the contract's order
    // (In-Reply-To, then References newest first); later ones are not
    // consulted even if they would lead elsewhere.
    let referenced = msg.reference_candidates().find_map(|id| facts.references.get(id));

    let placement = match (referenced, facts.pair_ongoing) {
        (Some(conv), _) if conv.is_ongoing() => append(Rule::ReplyOngoing, *conv, automatic, policy),
        (Some(closed), ongoing) => match ongoing {
            // R6: a robot's reply never creates follow-up work; it lands with
            // the pair's ongoing conversation, else beside the closed one it
            // answers, which stays closed.
            // I6: where it lands is linked `related` to the thread it
            // answers (R6 forbids a follow-up link, not this one).
            Some(ongoing) if automatic => {
                Placement { related_to: vec![closed.id], ..append(Rule::ReplyClosedAutomatic, ongoing, true, policy) }
            }
            None if automatic => append(Rule::ReplyClosedAutomatic, *closed, true, policy),
            Some(ongoing) => {
                Placement { follow_up_of: Some(closed.id), ..append(Rule::ReplyClosedAppended, ongoing, false, policy) }
            }
            None => new_conversation(Rule::ReplyClosedFollowUp, msg, facts, Some(closed.id)),
        },
        // R1r. The other conversations holding replies are R8's to merge or
        // link once the message has landed (`late_parent`).
        (None, _) if facts.replies_first.first().is_some_and(Conversation::is_ongoing) => {
            append(Rule::RepliesFirst, facts.replies_first[0], automatic, policy)
        }
        (None, Some(ongoing)) => append(Rule::SamePair, ongoing, automatic, policy),
        (None, None) => {
            // The window runs to when the message was received, not to when
            // a backlog gets processed; a clock ahead of ours is not trusted.
            let received = msg.received_at.min(now);
            let follow_up_of = facts
                .pair_latest_closed
                .filter(|_| !automatic)
                .filter(|latest| within_window(latest, policy.follow_up_window(msg.channel), received))
                .map(|latest| latest.id);
            let rule = if follow_up_of.is_some() { Rule::NewFollowUp } else { Rule::New };
            new_conversation(rule, msg, facts, follow_up_of)
        }
    };
    let landed = match &placement.target {
        Target::Existing(conv) => Some(conv.id),
        Target::New(_) => None,
    };
    let mut related_to: Vec<Uuid> = facts
        .refused
        .iter()
        .map(|c| c.id)
        .chain(placement.related_to.iter().copied())
        .filter(|id| Some(*id) != landed)
        .collect();
    related_to.sort_unstable();
    related_to.dedup();
    Plan::Place(Placement { related_to, ..placement })
}

/// R5 and R6 for a message appended to an existing conversation.
fn append(rule: Rule, target: Conversation, automatic: bool, policy: &Policy) -> Placement {
    let reopen = !automatic && target.status != Status::Closed && policy.reopen.contains(&target.status);
    Placement { rule, target: Target::Existing(target), reopen, follow_up_of: None, related_to: Vec::new() }
}

fn new_conversation(rule: Rule, msg: &InboundMessage, facts: &Facts, follow_up_of: Option<Uuid>) -> Placement {
    let who = facts
        .customer
        .as_ref()
        .and_then(|c| c.name.as_deref())
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or(msg.contact.as_str());
    Placement {
        rule,
        target: Target::New(NewConversation {
            topic: format!("Talking with {who}"),
            customer_id: facts.customer.as_ref().map(|c| c.id),
            copy_from: follow_up_of,
        }),
        reopen: false,
        follow_up_of,
        related_to: Vec::new(),
    }
}

/// "Closed less than `window` before the message was received". A message
/// received before the close (a backlog) is within any window.
fn within_window(conv: &Conversation, window: Option<Duration>, received: DateTime<Utc>) -> bool {
    match (conv.status, conv.closed_at, window) {
        (Status::Closed, Some(closed_at), Some(window)) => received - closed_at < window,
        _ => false,
    }
}

/// A conversation holding one copy of an email, for R7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyHolder {
    pub conversation_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// R7: given every conversation holding a copy of one email (same
/// Message-ID, any endpoint), the `related` links that must exist: each
/// conversation to the main one, the earliest created (ties broken by id).
/// The answer depends only on the set, never on the order copies arrived in,
/// which is what makes I5 hold under replays and races.
pub fn sibling_links(holders: &[CopyHolder]) -> Vec<(Uuid, Uuid)> {
    let Some(main) = holders.iter().min_by_key(|h| (h.created_at, h.conversation_id)) else {
        return Vec::new();
    };
    let mut links: Vec<(Uuid, Uuid)> = holders
        .iter()
        .filter(|h| h.conversation_id != main.conversation_id)
        .map(|h| (h.conversation_id, main.conversation_id))
        .collect();
    links.sort();
    links.dedup();
    links
}

/// R7 across Message-IDs: which of the `candidates` (existing `related`
/// links that R7 alone made, and that a Message-ID of the batch no longer
/// calls for) no Message-ID calls for either, and so go. Links are the union
/// of what every Message-ID calls for; `holders` gives, for every email with
/// inbound copies at both ends of some candidate, every conversation holding
/// a copy of it, read after the batch's own messages are written and under
/// the candidates' link locks (the store's part), so the answer is exact.
pub fn stale_sibling_links(
    candidates: &[(Uuid, Uuid)],
    holders: &BTreeMap<String, Vec<CopyHolder>>,
) -> Vec<(Uuid, Uuid)> {
    let called_for: std::collections::BTreeSet<(Uuid, Uuid)> =
        holders.values().flat_map(|copies| sibling_links(copies)).collect();
    let mut stale: Vec<(Uuid, Uuid)> = candidates.iter().copied().filter(|link| !called_for.contains(link)).collect();
    stale.sort();
    stale.dedup();
    stale
}
