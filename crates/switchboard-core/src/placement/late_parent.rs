//! R8, the late parent (contract section 3): once a message has landed,
//! the conversations that hold replies to it which came first are either
//! merged into where it landed or linked `related` to it.
//!
//! A reply that arrives before its parent cannot know where the thread will
//! live, so Switchboard starts a conversation for it (R4) or appends it to
//! its sender's ongoing one (R3). When the parent arrives later, or lands by
//! a reference of its own somewhere else, the thread is cut. The conversations
//! Switchboard started for such replies alone, and that nobody has looked at
//! since, are merged into the parent's conversation, exactly as an agent
//! would; everything else (an R3 append into a customer's other business, a
//! conversation an agent assigned) is only linked, so nothing an agent saw
//! moves under them.

use super::{Conversation, Status};
use crate::domain::ExternalId;
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};

use uuid::Uuid;

/// The most messages a conversation may hold and still be merged by R8. A
/// thread that grew this long before its parent arrived has been read by
/// somebody; and the store reads no more than this per conversation.
pub const MAX_MESSAGES: usize = 100;

/// A stored conversation's own row and events, as the store reads them for
/// every conversation R8 might merge. With [`MessageFacts`] they make the
/// contract's "untouched" test, which is decided here and only here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    pub status: Status,
    pub created_at: DateTime<Utc>,
    /// Merged into another conversation.
    pub merged: bool,
    /// It has an assignee, a queue or a form.
    pub owned: bool,
    /// Switchboard created it for an inbound message (a `created` event).
    pub created_here: bool,
    /// A customer's message reopened it once (a `reopened` event).
    pub reopened: bool,
}

impl Standing {
    /// Whether the conversation itself may still be R8's to merge at `now`:
    /// created by Switchboard within `window`, still `open` and never
    /// reopened, not merged away, with nobody assigned. Only then does the
    /// store read its messages ([`untouched`] decides the rest).
    pub fn may_be_untouched(&self, now: DateTime<Utc>, window: Duration) -> bool {
        self.status == Status::Open
            && !self.merged
            && !self.owned
            && self.created_here
            && !self.reopened
            && now - self.created_at < window
    }
}

/// One stored message of a conversation R8 might merge (the conversation's
/// own, or one merged into it), besides its [`ThreadMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageFacts {
    /// The customer wrote it (no agent did).
    pub inbound: bool,
    /// It sits in a conversation merged into this one by an agent (a merge
    /// without R8's `merged` event).
    pub merged_by_hand: bool,
}

/// The rest of "untouched", after [`Standing::may_be_untouched`], given
/// the conversation's messages as read (its own and those merged into it,
/// at most one past [`MAX_MESSAGES`]): only the customer wrote, nothing was
/// merged in except by R8, and it is small enough for R8. Past the bound
/// the read is partial, so nothing about the rest is known: R8 leaves such
/// a conversation alone (linked, never merged, never the thread's own).
pub fn untouched(messages: &[MessageFacts]) -> bool {
    messages.len() <= MAX_MESSAGES && messages.iter().all(|m| m.inbound && !m.merged_by_hand)
}

/// A conversation that holds replies which came before their parent, as far
/// as R8 needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Switchboard created it for an inbound message (a `created` event, not
    /// a follow-up), it is still `open`, has no assignee, queue or form,
    /// holds only inbound messages, is not merged into another, and nothing
    /// was merged into it except by R8.
    pub untouched: bool,
    pub created_at: DateTime<Utc>,
    /// Its messages, and those of the conversations R8 merged into it.
    pub messages: Vec<ThreadMessage>,
}

/// One message of a [`Shape`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadMessage {
    /// Its own id (email: the Message-ID).
    pub id: ExternalId,
    /// The ids it names (`In-Reply-To` and `References`).
    pub names: Vec<ExternalId>,
    /// The sender's normalized address.
    pub sender: String,
    /// Conversations holding messages it names, and every conversation on
    /// their merge chains, as far as known when it was read.
    pub named_in: Vec<Uuid>,
}

/// A conversation holding stored replies to the message being placed: the
/// end of the merge chain of the conversation a reply is stored in.
#[derive(Clone, Copy, Debug)]
pub struct Holder<'a> {
    pub end: Conversation,
    /// Its shape, when the store read one (it reads none for conversations
    /// that cannot qualify, such as one an agent merged another into).
    pub shape: Option<&'a Shape>,
    /// Every sender of its messages may join the parent's conversation
    /// under the sender policy.
    pub admitted: bool,
}

/// What R8 does with one conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Merge this conversation into the parent's, as an agent's merge.
    Merge(Uuid),
    /// Link this conversation `related` to the parent's.
    Link(Uuid),
}

/// Where the late parent landed, as R8 needs to know it.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub conversation: Conversation,
    /// The conversation is the thread's own: the parent's parent's (R1), a
    /// new one (R4, R2's follow-up), or the replies' own holding nothing
    /// else (R1r). Not a customer's other business (R3, an R2 or R6 append
    /// to the pair's ongoing conversation): nothing is merged into that.
    pub of_the_thread: bool,
}

/// R8 for the message `parent` (its id), landed in `target`, given the
/// conversations that hold its replies (earliest stored first; repeats are
/// fine). `joins_target` tells whether a message names one that is in
/// `target` (after `merged_into`). `now` is the database clock; `window` is
/// `late_parent_window` (`None`: never merge, only link).
pub fn decide(
    parent: &ExternalId,
    target: &Target,
    holders: &[Holder<'_>],
    joins_target: &dyn Fn(&ThreadMessage) -> bool,
    window: Option<Duration>,
    now: DateTime<Utc>,
) -> Vec<Action> {
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut actions = Vec::new();
    for h in holders {
        if h.end.id == target.conversation.id || !seen.insert(h.end.id) {
            continue;
        }
        let mergeable = target.conversation.is_ongoing()
            && target.of_the_thread
            && h.admitted
            && h.shape.is_some_and(|s| {
                s.untouched
                    && window.is_some_and(|w| now - s.created_at < w)
                    && s.messages.len() <= MAX_MESSAGES
                    && only_replies_of(s, parent, joins_target)
            });
        actions.push(if mergeable { Action::Merge(h.end.id) } else { Action::Link(h.end.id) });
    }
    actions
}

/// The replies' conversation R1r put the parent in holds nothing but the
/// thread: with the parent in it, its messages are all tied together by
/// the ids they name. A customer's other mail (an R3 append) names nothing
/// there and nothing there names it.
pub(crate) fn holds_only_the_thread(shape: &Shape, parent: &ExternalId) -> bool {
    tied(shape, |m| m.id == *parent)
}

/// The conversation holds nothing but replies of this thread: every message
/// is tied to the parent by the ids the messages name: it names the parent,
/// or a message already in the parent's conversation (which R1 would have
/// put there had it come later), or another message of the conversation
/// that is tied, or is named by one. The last case is a reply whose own
/// parent has not arrived yet, held there because a reply to it came first.
fn only_replies_of(shape: &Shape, parent: &ExternalId, joins_target: &dyn Fn(&ThreadMessage) -> bool) -> bool {
    tied(shape, |m| m.names.contains(parent) || joins_target(m))
}

/// Whether every message of `shape` is connected, through the ids the
/// messages name, to one for which `anchored` holds.
fn tied(shape: &Shape, anchored: impl Fn(&ThreadMessage) -> bool) -> bool {
    let messages = &shape.messages;
    let index: HashMap<&ExternalId, usize> = messages.iter().enumerate().map(|(i, m)| (&m.id, i)).collect();
    // Union-find; the extra last slot is the anchor.
    let anchor = messages.len();
    let mut group: Vec<usize> = (0..=anchor).collect();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    let join = |group: &mut Vec<usize>, a: usize, b: usize| {
        let (a, b) = (root(group, a), root(group, b));
        group[a] = b;
    };
    for (i, m) in messages.iter().enumerate() {
        if anchored(m) {
            join(&mut group, i, anchor);
        }
        for n in &m.names {
            if let Some(&j) = index.get(n) {
                join(&mut group, i, j);
            }
        }
    }
    let a = root(&mut group, anchor);
    (0..messages.len()).all(|i| root(&mut group, i) == a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::Status;
    use chrono::TimeZone;

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + minutes * 60, 0).unwrap()
    }

    fn conv(n: u128, status: Status) -> Conversation {
        Conversation { id: Uuid::from_u128(n), status, created_at: at(0), closed_at: None }
    }

    fn reply(id: &str, names: &[&str]) -> ThreadMessage {
        ThreadMessage {
            id: eid(id),
            names: names.iter().map(|n| eid(n)).collect(),
            sender: "c@example.com".into(),
            named_in: Vec::new(),
        }
    }

    fn standing() -> Standing {
        Standing {
            status: Status::Open,
            created_at: at(0),
            merged: false,
            owned: false,
            created_here: true,
            reopened: false,
        }
    }

    #[test]
    fn a_conversation_is_untouched_only_while_nobody_but_the_customer_acted_on_it() {
        let (now, window) = (at(1), Duration::hours(1));
        assert!(standing().may_be_untouched(now, window));
        let touched = [
            Standing { status: Status::Waiting, ..standing() },
            Standing { status: Status::Solved, ..standing() },
            Standing { merged: true, ..standing() },
            Standing { owned: true, ..standing() },
            Standing { created_here: false, ..standing() },
            Standing { reopened: true, ..standing() },
        ];
        for s in touched {
            assert!(!s.may_be_untouched(now, window), "{s:?}");
        }
        // The window is the conversation's age, not the message's.
        assert!(!standing().may_be_untouched(at(0) + window, window));
        let customer = MessageFacts { inbound: true, merged_by_hand: false };
        assert!(untouched(&[customer, customer]));
        assert!(!untouched(&[customer, MessageFacts { inbound: false, ..customer }]));
        assert!(!untouched(&[customer, MessageFacts { merged_by_hand: true, ..customer }]));
        assert!(untouched(&[customer; MAX_MESSAGES]));
        assert!(!untouched(&[customer; MAX_MESSAGES + 1]), "a partial read proves nothing");
    }

    fn eid(id: &str) -> ExternalId {
        ExternalId::parse(id).unwrap()
    }

    fn nothing_in_target(_: &ThreadMessage) -> bool {
        false
    }

    fn decide(
        parent: &str,
        target: &Conversation,
        holders: &[Holder<'_>],
        window: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Vec<Action> {
        let target = Target { conversation: *target, of_the_thread: true };
        super::decide(&eid(parent), &target, holders, &nothing_in_target, window, now)
    }

    fn shape(messages: Vec<ThreadMessage>) -> Shape {
        Shape { untouched: true, created_at: at(0), messages }
    }

    fn holder(n: u128, shape: &Shape) -> Holder<'_> {
        Holder { end: conv(n, Status::Open), shape: Some(shape), admitted: true }
    }

    const HOUR: Option<Duration> = Some(Duration::hours(1));

    #[test]
    fn an_untouched_conversation_of_replies_is_merged_into_the_parents() {
        let s = shape(vec![reply("b", &["a"]), reply("c", &["b"])]);
        let actions = decide("a", &conv(1, Status::Open), &[holder(2, &s)], HOUR, at(30));
        assert_eq!(actions, vec![Action::Merge(Uuid::from_u128(2))]);
    }

    #[test]
    fn the_parents_own_conversation_and_repeats_are_skipped() {
        let s = shape(vec![reply("b", &["a"])]);
        let actions = decide("a", &conv(1, Status::Open), &[holder(1, &s), holder(2, &s), holder(2, &s)], HOUR, at(1));
        assert_eq!(actions, vec![Action::Merge(Uuid::from_u128(2))]);
    }

    #[test]
    fn a_conversation_with_other_business_is_only_linked() {
        // An R3 append: the customer's unrelated mail sits beside the reply.
        let s = shape(vec![reply("x", &[]), reply("b", &["a"])]);
        assert_eq!(
            decide("a", &conv(1, Status::Open), &[holder(2, &s)], HOUR, at(1)),
            vec![Action::Link(Uuid::from_u128(2))]
        );
        // A message that names only itself is not part of the thread either.
        let s = shape(vec![reply("b", &["a"]), reply("y", &["y"])]);
        assert_eq!(
            decide("a", &conv(1, Status::Open), &[holder(2, &s)], HOUR, at(1)),
            vec![Action::Link(Uuid::from_u128(2))]
        );
    }

    #[test]
    fn touched_late_refused_or_merged_conversations_are_only_linked() {
        let target = conv(1, Status::Open);
        let link = vec![Action::Link(Uuid::from_u128(2))];
        let touched = Shape { untouched: false, ..shape(vec![reply("b", &["a"])]) };
        assert_eq!(decide("a", &target, &[holder(2, &touched)], HOUR, at(1)), link);
        let fine = shape(vec![reply("b", &["a"])]);
        assert_eq!(decide("a", &target, &[holder(2, &fine)], HOUR, at(60)), link, "the window is over at one hour");
        assert_eq!(decide("a", &target, &[holder(2, &fine)], HOUR, at(59)), vec![Action::Merge(Uuid::from_u128(2))]);
        assert_eq!(decide("a", &target, &[holder(2, &fine)], None, at(1)), link, "no window: never merge");
        let refused = Holder { admitted: false, ..holder(2, &fine) };
        assert_eq!(decide("a", &target, &[refused], HOUR, at(1)), link, "a sender the policy refuses");
        // No shape read: not known to be untouched (an agent merged the
        // reply's conversation into this one, say).
        let unknown = Holder { shape: None, ..holder(2, &fine) };
        assert_eq!(decide("a", &target, &[unknown], HOUR, at(1)), link);
    }

    #[test]
    fn a_reply_to_a_message_already_in_the_parents_conversation_counts_as_the_threads() {
        // c answers b, which is with the parent already; c came before b and
        // waits in a conversation of its own with another reply to a.
        let s = shape(vec![reply("d", &["a"]), reply("c", &["b"])]);
        let target = conv(1, Status::Open);
        let in_target = |m: &ThreadMessage| m.names.contains(&eid("b"));
        let t = Target { conversation: target, of_the_thread: true };
        let merged = super::decide(&eid("a"), &t, &[holder(2, &s)], &in_target, HOUR, at(1));
        assert_eq!(merged, vec![Action::Merge(Uuid::from_u128(2))]);
        assert_eq!(decide("a", &target, &[holder(2, &s)], HOUR, at(1)), vec![Action::Link(Uuid::from_u128(2))]);
    }

    #[test]
    fn nothing_is_merged_into_a_customers_other_business() {
        let s = shape(vec![reply("b", &["a"])]);
        let other = Target { conversation: conv(1, Status::Open), of_the_thread: false };
        let actions = super::decide(&eid("a"), &other, &[holder(2, &s)], &nothing_in_target, HOUR, at(1));
        assert_eq!(actions, vec![Action::Link(Uuid::from_u128(2))]);
        // R1r's target: the replies' conversation, with the parent in it.
        let own = shape(vec![reply("b", &["a"]), reply("a", &[]), reply("c", &["b"])]);
        assert!(holds_only_the_thread(&own, &eid("a")));
        // c answers b, whose own parent (x) has not come: c still ties b to a.
        let gap = shape(vec![reply("c", &["b", "a"]), reply("b", &["x"]), reply("a", &[])]);
        assert!(holds_only_the_thread(&gap, &eid("a")));
        let mixed = shape(vec![reply("invoice", &[]), reply("b", &["a"]), reply("a", &[])]);
        assert!(!holds_only_the_thread(&mixed, &eid("a")));
    }

    #[test]
    fn nothing_is_merged_into_a_closed_conversation() {
        let s = shape(vec![reply("b", &["a"])]);
        let actions = decide("a", &conv(1, Status::Closed), &[holder(2, &s)], HOUR, at(1));
        assert_eq!(actions, vec![Action::Link(Uuid::from_u128(2))]);
    }

    #[test]
    fn a_conversation_at_the_message_bound_merges_and_one_past_it_links() {
        let at_bound = shape((0..MAX_MESSAGES).map(|n| reply(&format!("r{n}"), &["a"])).collect());
        let target = conv(1, Status::Open);
        assert_eq!(decide("a", &target, &[holder(2, &at_bound)], HOUR, at(1)), vec![Action::Merge(Uuid::from_u128(2))]);
        let past = shape((0..=MAX_MESSAGES).map(|n| reply(&format!("r{n}"), &["a"])).collect());
        assert_eq!(decide("a", &target, &[holder(2, &past)], HOUR, at(1)), vec![Action::Link(Uuid::from_u128(2))]);
    }
}
