//! Property tests of R8 and I6 (contract section 3): a generated email
//! thread (roots, replies, replies to replies, messages that never arrive,
//! references in full or only `In-Reply-To`, several senders, copies to a
//! second inbox, automatic replies) and a customer's unrelated mail, placed in many orders and
//! batchings through [`plan_batch`] against the in-memory database of
//! [`super::batch_model`], with agents acting between batches.
//!
//! In every run: I6 holds; R8 never merges a conversation holding anything
//! but its thread's replies (an R3 append is never moved) nor one an agent
//! touched. When nobody touched anything and none of a thread's messages
//! sits in a conversation R3 appended to (a sender's ongoing conversation
//! takes their next mail whatever it is about), the thread ends in one
//! conversation (after `merged_into`), whatever the order.

use super::batch::MessageKey;
use super::batch_model::Db;
use super::*;
use crate::domain::{Address, Details, ExternalId};
use chrono::TimeZone;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// One message of the generated thread.
#[derive(Clone, Debug)]
struct Node {
    /// Index of its parent among earlier nodes; `None` for the root.
    parent: Option<usize>,
    sender: u8,
    /// `References` carries every ancestor; else only `In-Reply-To` names one.
    full_references: bool,
    /// Never arrives (its replies still name it).
    missing: bool,
    /// A copy also reaches the second inbox.
    copied: bool,
    /// An automatic reply (R6: never reopens, never starts a follow-up).
    automatic: bool,
}

#[derive(Clone, Debug)]
enum Agent {
    /// Assign the conversation holding this message.
    Assign(usize),
    /// Close it.
    Close(usize),
    /// Set it `waiting`.
    Wait(usize),
}

/// A processing order: a permutation of the records, the sizes of the
/// batches they are cut into, and agents' actions after some batches (by
/// batch number).
type Order = (Vec<usize>, Vec<usize>, Vec<(usize, Agent)>);

#[derive(Clone, Debug)]
struct Scenario {
    nodes: Vec<Node>,
    /// Senders of unrelated mail (no references), to the first inbox.
    unrelated: Vec<u8>,
    orders: Vec<Order>,
    reply_senders: SenderPolicy,
}

const INBOXES: [&str; 2] = ["support@acme.test", "sales@acme.test"];

fn node() -> impl Strategy<Value = (prop::sample::Index, u8, bool, bool, bool, bool)> {
    (
        any::<prop::sample::Index>(),
        0..4u8,
        any::<bool>(),
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.1),
    )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let nodes = proptest::collection::vec(node(), 2..10).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (parent, sender, full_references, missing, copied, automatic))| Node {
                parent: (i > 0).then(|| parent.index(i)),
                sender,
                full_references,
                missing,
                copied,
                automatic,
            })
            .collect::<Vec<_>>()
    });
    // Unrelated mail comes from thread senders half the time.
    let unrelated = proptest::collection::vec(prop_oneof![0..4u8, 10..12u8], 0..3);
    let policy = prop_oneof![3 => Just(SenderPolicy::Any), 1 => Just(SenderPolicy::Participants)];
    (nodes, unrelated, policy).prop_flat_map(|(nodes, unrelated, reply_senders)| {
        let records = records_of(&nodes, &unrelated).len();
        let agent = prop_oneof![
            (0..nodes.len()).prop_map(Agent::Assign),
            (0..nodes.len()).prop_map(Agent::Close),
            (0..nodes.len()).prop_map(Agent::Wait),
        ];
        let agents = prop_oneof![3 => Just(Vec::new()), 1 => proptest::collection::vec((0..8usize, agent), 1..3)];
        let order = (
            Just((0..records).collect::<Vec<_>>()).prop_shuffle(),
            proptest::collection::vec(1..5usize, records),
            agents,
        );
        proptest::collection::vec(order, 4).prop_map(move |orders| Scenario {
            nodes: nodes.clone(),
            unrelated: unrelated.clone(),
            orders,
            reply_senders,
        })
    })
}

fn id_of(i: usize) -> String {
    format!("t{i}@lists.test")
}

fn sender_of(n: u8) -> String {
    format!("c{n}@example.com")
}

fn ancestors(nodes: &[Node], i: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = nodes[i].parent;
    while let Some(p) = at {
        out.push(p);
        at = nodes[p].parent;
    }
    out.reverse();
    out
}

/// (node index or `None` for unrelated mail, the message).
fn records_of(nodes: &[Node], unrelated: &[u8]) -> Vec<(Option<usize>, InboundMessage)> {
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.missing {
            continue;
        }
        let references = if n.full_references { ancestors(nodes, i).into_iter().map(id_of).collect() } else { vec![] };
        let inboxes = if n.copied { &INBOXES[..] } else { &INBOXES[..1] };
        for inbox in inboxes {
            let mut m = mail(inbox, n.sender, &id_of(i), n.parent.map(id_of), references.clone());
            m.auto_generated = n.automatic;
            // Everyone on the list receives every message.
            m.details.to = (0..4).map(sender_of).collect();
            out.push((Some(i), m));
        }
    }
    for (k, sender) in unrelated.iter().enumerate() {
        out.push((None, mail(INBOXES[0], *sender, &format!("other{k}@example.com"), None, vec![])));
    }
    out
}

fn mail(inbox: &str, sender: u8, id: &str, in_reply_to: Option<String>, references: Vec<String>) -> InboundMessage {
    InboundMessage {
        channel: Channel::Email,
        endpoint: Address::for_channel(Channel::Email, inbox).unwrap(),
        contact: Address::for_channel(Channel::Email, &sender_of(sender)).unwrap(),
        external_id: ExternalId::parse(id).unwrap(),
        subject: None,
        body_text: String::new(),
        body_html: None,
        in_reply_to: in_reply_to.map(ExternalId::from),
        references: references.into_iter().map(ExternalId::from).collect(),
        auto_generated: false,
        sent_at: None,
        received_at: Utc.timestamp_opt(0, 0).unwrap(),
        raw: None,
        details: Details::default(),
    }
}

/// What one run left behind, named by message.
struct Run {
    db: Db,
    /// Conversations an agent touched.
    touched: BTreeSet<Uuid>,
}

fn run(s: &Scenario, order: &Order) -> Run {
    let records = records_of(&s.nodes, &s.unrelated);
    let policy = Policy { reply_senders: s.reply_senders, ..Policy::default() };
    let (permutation, sizes, agents) = order;
    let mut db = Db::default();
    let mut touched = BTreeSet::new();
    let mut at = 0;
    for (batch_no, size) in sizes.iter().enumerate() {
        if at >= permutation.len() {
            break;
        }
        let end = (at + size).min(permutation.len());
        let batch: Vec<InboundMessage> = permutation[at..end].iter().map(|r| records[*r].1.clone()).collect();
        db.place(&batch, &policy);
        at = end;
        for (_, agent) in agents.iter().filter(|(after, _)| *after == batch_no) {
            let node = match agent {
                Agent::Assign(n) | Agent::Close(n) | Agent::Wait(n) => *n,
            };
            let key = MessageKey::new(Channel::Email, INBOXES[0], id_of(node));
            let Some(conv) = db.messages.get(&key).copied() else { continue };
            let Some(end) = chain_end(&db, conv) else { continue };
            touched.insert(end);
            let now = db.now();
            let row = db.convs.get_mut(&end).unwrap();
            match agent {
                Agent::Assign(_) => {
                    db.assigned.insert(end);
                }
                Agent::Close(_) => (row.conversation.status, row.conversation.closed_at) = (Status::Closed, Some(now)),
                Agent::Wait(_) if row.conversation.status != Status::Closed => {
                    row.conversation.status = Status::Waiting
                }
                Agent::Wait(_) => {}
            }
        }
    }
    Run { db, touched }
}

fn chain_end(db: &Db, mut id: Uuid) -> Option<Uuid> {
    for _ in 0..64 {
        match db.convs.get(&id)?.merged_into {
            Some(next) => id = next,
            None => return Some(id),
        }
    }
    None
}

/// Related or follow-up links between the ends of two conversations' chains.
fn linked(db: &Db, a: Uuid, b: Uuid) -> bool {
    db.links.iter().any(|(x, y, _)| {
        let (x, y) = (chain_end(db, *x), chain_end(db, *y));
        (x == Some(a) && y == Some(b)) || (x == Some(b) && y == Some(a))
    })
}

/// The threads at one inbox: each message there joined with the first
/// message it names that is there too (R1's choice). A message that also
/// names a message of another such thread (the one between them never
/// arrived, and the other's reply named only it) bridges the two: where it
/// lands depends on which came first, the contract merges neither into the
/// other, and both are left out (I6 is still checked for them).
fn components(s: &Scenario, inbox: &str) -> Vec<BTreeSet<usize>> {
    let present: Vec<usize> =
        (0..s.nodes.len()).filter(|i| !s.nodes[*i].missing && (inbox == INBOXES[0] || s.nodes[*i].copied)).collect();
    let mut group: BTreeMap<usize, usize> = present.iter().map(|i| (*i, *i)).collect();
    let find = |group: &BTreeMap<usize, usize>, mut i: usize| {
        while group[&i] != i {
            i = group[&i];
        }
        i
    };
    for i in &present {
        // R1's choice: In-Reply-To, then References newest first.
        let mut named: Vec<usize> = s.nodes[*i].parent.into_iter().collect();
        if s.nodes[*i].full_references {
            named.extend(ancestors(&s.nodes, *i).into_iter().rev());
        }
        if let Some(n) = named.into_iter().find(|n| group.contains_key(n)) {
            let (a, b) = (find(&group, *i), find(&group, n));
            group.insert(a, b);
        }
    }
    // A message naming messages of two threads: which one R1 puts it in
    // depends on which arrived first, so neither is promised whole.
    let mut bridged: BTreeSet<usize> = BTreeSet::new();
    for i in &present {
        let mut named: Vec<usize> = s.nodes[*i].parent.into_iter().collect();
        if s.nodes[*i].full_references {
            named.extend(ancestors(&s.nodes, *i));
        }
        let mut roots: BTreeSet<usize> =
            named.into_iter().filter(|n| group.contains_key(n)).map(|n| find(&group, n)).collect();
        roots.insert(find(&group, *i));
        if roots.len() > 1 {
            bridged.extend(roots);
        }
    }
    let mut out: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for i in &present {
        let root = find(&group, *i);
        if !bridged.contains(&root) {
            out.entry(root).or_default().insert(*i);
        }
    }
    out.into_values().collect()
}

fn check(s: &Scenario, r: &Run) -> Result<(), TestCaseError> {
    let db = &r.db;
    let conv_of = |inbox: &str, id: &str| db.messages.get(&MessageKey::new(Channel::Email, inbox, id)).copied();
    // I6: a reply ends with its parent, or in a conversation linked to it.
    for inbox in INBOXES {
        for (i, n) in s.nodes.iter().enumerate() {
            let (Some(reply), Some(parent)) =
                (conv_of(inbox, &id_of(i)), n.parent.and_then(|p| conv_of(inbox, &id_of(p))))
            else {
                continue;
            };
            let (a, b) = (chain_end(db, reply).unwrap(), chain_end(db, parent).unwrap());
            prop_assert!(
                a == b || linked(db, a, b),
                "I6: {} at {inbox} is apart from its parent and not linked",
                id_of(i)
            );
        }
    }
    // R8 moves only its thread's replies, never what an agent touched.
    let thread_ids: BTreeSet<String> = (0..s.nodes.len()).map(id_of).collect();
    for (from, _) in &db.merges {
        prop_assert!(!r.touched.contains(from), "R8 merged a conversation an agent touched");
        for member in db.members(*from) {
            for (MessageKey { external_id: id, .. }, conv) in &db.messages {
                if *conv == member {
                    prop_assert!(
                        thread_ids.contains(id.as_str()),
                        "R8 moved {id}, which is not of the thread (an R3 append)"
                    );
                }
            }
        }
    }
    // Whole threads, when nobody touched anything and nothing else shares
    // an inbox and a sender with the thread.
    // (Every sender is in every message's `To`: `participants` admits them.)
    if !r.touched.is_empty() {
        return Ok(());
    }
    for inbox in INBOXES {
        for thread in components(s, inbox) {
            // R3 put mail (of this thread or not) with the sender's ongoing
            // conversation: those conversations are never moved.
            let with_r3: BTreeSet<Uuid> = db
                .rules
                .iter()
                .filter(|(key, rule)| key.endpoint == inbox && **rule == Rule::SamePair)
                .map(|(key, _)| db.messages[key])
                .collect();
            if thread.iter().any(|i| conv_of(inbox, &id_of(*i)).is_some_and(|c| with_r3.contains(&c))) {
                continue;
            }
            let ends: BTreeSet<Uuid> =
                thread.iter().map(|i| chain_end(db, conv_of(inbox, &id_of(*i)).unwrap()).unwrap()).collect();
            prop_assert_eq!(ends.len(), 1, "thread {:?} at {} ends in {} conversations", thread, inbox, ends.len());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn threads_end_whole_and_linked_whatever_the_order(s in scenario()) {
        for order in &s.orders {
            let r = run(&s, order);
            check(&s, &r)?;
        }
    }
}

/// A review's case: Bob's invoice conversation took his reply to a list
/// post by R3 before the post arrived; Carol's reply started its own. The
/// post joins Bob's conversation by R1r (the earliest reply is there), and
/// Carol's conversation is linked to it, not merged into Bob's invoice.
#[test]
fn nothing_is_merged_into_a_conversation_holding_a_customers_other_business() {
    let policy = Policy { reply_senders: SenderPolicy::Any, ..Policy::default() };
    let mut db = Db::default();
    let invoice = mail(INBOXES[0], 1, "invoice@example.com", None, vec![]);
    let bob = mail(INBOXES[0], 1, "r1@lists.test", Some("p@lists.test".into()), vec![]);
    let carol = mail(INBOXES[0], 2, "r2@lists.test", Some("p@lists.test".into()), vec![]);
    let post = mail(INBOXES[0], 3, "p@lists.test", None, vec![]);
    for m in [&invoice, &bob, &carol, &post] {
        db.place(std::slice::from_ref(m), &policy);
    }
    let conv = |id: &str| db.messages[&MessageKey::new(Channel::Email, INBOXES[0], id)];
    assert_eq!(conv("r1@lists.test"), conv("invoice@example.com"), "R3");
    assert_eq!(conv("p@lists.test"), conv("invoice@example.com"), "R1r");
    assert!(db.merges.is_empty(), "merged: {:?}", db.merges);
    let (carols, bobs) = (conv("r2@lists.test"), conv("invoice@example.com"));
    assert!(db.links.contains(&(carols, bobs, "related")), "linked instead: {:?}", db.links);

    // Without the invoice, Bob's and Carol's conversations hold only the
    // thread, and the post gathers them.
    let mut db = Db::default();
    for m in [&bob, &carol, &post] {
        db.place(std::slice::from_ref(m), &policy);
    }
    assert_eq!(db.merges.len(), 1, "{:?}", db.links);
}
