//! The decision table, row by row and edge by edge, in the contract's words.

use super::*;
use crate::domain::{Address, Details, ExternalId};
use chrono::TimeZone;

pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

pub(super) fn msg(channel: Channel) -> InboundMessage {
    let (endpoint, contact) = match channel {
        Channel::Email => (Address::email("support@acme.test").unwrap(), Address::email("ana@example.com").unwrap()),
        Channel::Sms => (Address::phone("80010020000").unwrap(), Address::phone("385916242493").unwrap()),
        Channel::Messenger => (Address::messenger_id("104729").unwrap(), Address::messenger_id("6178123").unwrap()),
    };
    InboundMessage {
        channel,
        endpoint,
        contact,
        external_id: ExternalId::parse("m-new").unwrap(),
        subject: None,
        body_text: "hello".into(),
        body_html: None,
        in_reply_to: None,
        references: vec![],
        auto_generated: false,
        sent_at: None,
        received_at: now(),
        raw: None,
        details: Details::default(),
    }
}

pub(super) fn conv(n: u128, status: Status) -> Conversation {
    Conversation {
        id: Uuid::from_u128(n),
        status,
        created_at: now() - Duration::days(30) + Duration::seconds(n as i64),
        closed_at: (status == Status::Closed).then(|| now() - Duration::days(1)),
    }
}

pub(super) fn placed(plan: Plan) -> Placement {
    match plan {
        Plan::Place(p) => p,
        Plan::Duplicate => panic!("expected a placement, got a duplicate"),
    }
}

pub(super) fn existing(p: &Placement) -> Uuid {
    match &p.target {
        Target::Existing(c) => c.id,
        Target::New(_) => panic!("expected an existing target, got a new conversation"),
    }
}

pub(super) fn new(p: &Placement) -> &NewConversation {
    match &p.target {
        Target::New(n) => n,
        Target::Existing(c) => panic!("expected a new conversation, got {}", c.id),
    }
}

pub(super) fn reply_to(mut m: InboundMessage, id: &str) -> InboundMessage {
    m.in_reply_to = Some(id.into());
    m
}

pub(super) fn refs(entries: &[(&str, Conversation)]) -> HashMap<ExternalId, Conversation> {
    entries.iter().map(|(k, c)| (ExternalId::from(*k), *c)).collect()
}

#[test]
fn r0_a_stored_message_changes_nothing() {
    let facts = Facts { duplicate: true, pair_ongoing: Some(conv(1, Status::Waiting)), ..Facts::default() };
    assert_eq!(place(&msg(Channel::Email), &facts, &Policy::default(), now()), Plan::Duplicate);
}

#[test]
fn r1_a_reply_lands_in_its_ongoing_conversation_even_when_the_pair_has_another() {
    let thread = conv(1, Status::Pending);
    let facts =
        Facts { references: refs(&[("m-1", thread)]), pair_ongoing: Some(conv(2, Status::Open)), ..Facts::default() };
    let p = placed(place(&reply_to(msg(Channel::Email), "m-1"), &facts, &Policy::default(), now()));
    assert_eq!(p.rule, Rule::ReplyOngoing);
    assert_eq!(existing(&p), thread.id);
    assert!(!p.reopen, "pending stays pending by default");
    assert_eq!(p.follow_up_of, None);
}

#[test]
fn r1_in_reply_to_is_tried_before_references_and_references_newest_first() {
    let (a, b, c) = (conv(1, Status::Open), conv(2, Status::Open), conv(3, Status::Open));
    let mut m = msg(Channel::Email);
    m.references = vec!["old".into(), "newer".into()];
    let facts = Facts { references: refs(&[("old", a), ("newer", b)]), ..Facts::default() };
    assert_eq!(existing(&placed(place(&m, &facts, &Policy::default(), now()))), b.id, "newest reference first");

    m.in_reply_to = Some("irt".into());
    let facts = Facts { references: refs(&[("old", a), ("newer", b), ("irt", c)]), ..Facts::default() };
    assert_eq!(existing(&placed(place(&m, &facts, &Policy::default(), now()))), c.id, "In-Reply-To first");
}

#[test]
fn r1_an_unresolved_reference_falls_through_to_the_pair() {
    let pair = conv(5, Status::Open);
    let facts = Facts { pair_ongoing: Some(pair), ..Facts::default() };
    let p = placed(place(&reply_to(msg(Channel::Messenger), "m_unknown"), &facts, &Policy::default(), now()));
    assert_eq!(p.rule, Rule::SamePair);
    assert_eq!(existing(&p), pair.id);
}

#[test]
fn r2_a_reply_to_a_closed_conversation_starts_a_follow_up_that_copies_it() {
    let closed = conv(1, Status::Closed);
    let facts = Facts { references: refs(&[("m-1", closed)]), ..Facts::default() };
    let p = placed(place(&reply_to(msg(Channel::Email), "m-1"), &facts, &Policy::default(), now()));
    assert_eq!(p.rule, Rule::ReplyClosedFollowUp);
    assert_eq!(new(&p).copy_from, Some(closed.id));
    assert_eq!(p.follow_up_of, Some(closed.id));
}

#[test]
fn r2_a_reply_to_a_closed_conversation_joins_the_pairs_ongoing_one_and_links_it() {
    let (closed, ongoing) = (conv(1, Status::Closed), conv(2, Status::Solved));
    let facts = Facts { references: refs(&[("m-1", closed)]), pair_ongoing: Some(ongoing), ..Facts::default() };
    let p = placed(place(&reply_to(msg(Channel::Messenger), "m-1"), &facts, &Policy::default(), now()));
    assert_eq!(p.rule, Rule::ReplyClosedAppended);
    assert_eq!(existing(&p), ongoing.id);
    assert_eq!(p.follow_up_of, Some(closed.id));
    assert!(p.reopen, "R5 applies to the conversation it lands in");
}

#[test]
fn r3_a_message_on_a_pair_with_an_ongoing_conversation_is_appended() {
    let ongoing = conv(9, Status::Open);
    let facts = Facts { pair_ongoing: Some(ongoing), ..Facts::default() };
    let p = placed(place(&msg(Channel::Sms), &facts, &Policy::default(), now()));
    assert_eq!((p.rule, existing(&p), p.reopen), (Rule::SamePair, ongoing.id, false));
}

#[test]
fn r4_a_new_pair_gets_a_new_open_conversation_named_after_the_contact() {
    let p = placed(place(&msg(Channel::Email), &Facts::default(), &Policy::default(), now()));
    assert_eq!(p.rule, Rule::New);
    let n = new(&p);
    assert_eq!(n.topic, "Talking with ana@example.com");
    assert_eq!((n.customer_id, n.copy_from, p.follow_up_of), (None, None, None));
}

#[test]
fn r4_a_known_customer_is_named_and_attached() {
    let customer = Customer { id: Uuid::from_u128(77), name: Some("Ana Horvat".into()) };
    let facts = Facts { customer: Some(customer.clone()), ..Facts::default() };
    let p = placed(place(&msg(Channel::Sms), &facts, &Policy::default(), now()));
    assert_eq!(new(&p).topic, "Talking with Ana Horvat");
    assert_eq!(new(&p).customer_id, Some(customer.id));
}

#[test]
fn r4_sms_within_the_window_after_a_close_starts_a_follow_up() {
    let closed = conv(1, Status::Closed); // closed a day ago
    let facts = Facts { pair_latest_closed: Some(closed), ..Facts::default() };
    for channel in [Channel::Sms, Channel::Messenger] {
        let p = placed(place(&msg(channel), &facts, &Policy::default(), now()));
        assert_eq!(p.rule, Rule::NewFollowUp, "{channel}");
        assert_eq!((p.follow_up_of, new(&p).copy_from), (Some(closed.id), Some(closed.id)));
    }
}

#[test]
fn r4_outside_the_window_or_for_email_there_is_no_follow_up() {
    let closed = conv(1, Status::Closed);
    let facts = Facts { pair_latest_closed: Some(closed), ..Facts::default() };
    let short = Policy { sms_follow_up_window: Some(Duration::hours(12)), ..Policy::default() };
    assert_eq!(placed(place(&msg(Channel::Sms), &facts, &short, now())).rule, Rule::New);
    let off = Policy { messenger_follow_up_window: None, ..Policy::default() };
    assert_eq!(placed(place(&msg(Channel::Messenger), &facts, &off, now())).rule, Rule::New);
    assert_eq!(placed(place(&msg(Channel::Email), &facts, &Policy::default(), now())).rule, Rule::New);
}

#[test]
fn r5_waiting_and_solved_reopen_pending_and_open_stay() {
    for (status, reopens) in
        [(Status::Waiting, true), (Status::Solved, true), (Status::Pending, false), (Status::Open, false)]
    {
        let facts = Facts { pair_ongoing: Some(conv(1, status)), ..Facts::default() };
        assert_eq!(placed(place(&msg(Channel::Sms), &facts, &Policy::default(), now())).reopen, reopens, "{status:?}");
    }
}

#[test]
fn r5_the_set_of_statuses_that_reopen_is_configurable() {
    let policy = Policy { reopen: vec![Status::Pending], ..Policy::default() };
    let pending = Facts { pair_ongoing: Some(conv(1, Status::Pending)), ..Facts::default() };
    let waiting = Facts { pair_ongoing: Some(conv(1, Status::Waiting)), ..Facts::default() };
    assert!(placed(place(&msg(Channel::Sms), &pending, &policy, now())).reopen);
    assert!(!placed(place(&msg(Channel::Sms), &waiting, &policy, now())).reopen);
}

#[test]
fn r5_a_closed_conversation_is_never_reopened_even_if_configured() {
    let policy = Policy { reopen: vec![Status::Closed], ..Policy::default() };
    let mut auto = reply_to(msg(Channel::Email), "m-1");
    auto.auto_generated = true;
    let facts = Facts { references: refs(&[("m-1", conv(1, Status::Closed))]), ..Facts::default() };
    let p = placed(place(&auto, &facts, &policy, now()));
    assert!(!p.reopen);
}

#[test]
fn r6_automatic_mail_never_reopens() {
    let mut m = msg(Channel::Email);
    m.auto_generated = true;
    let facts = Facts { pair_ongoing: Some(conv(1, Status::Solved)), ..Facts::default() };
    let p = placed(place(&m, &facts, &Policy::default(), now()));
    assert_eq!((p.rule, p.reopen), (Rule::SamePair, false));
}

#[test]
fn r6_automatic_reply_to_a_closed_conversation_starts_no_follow_up_and_is_linked_related_when_apart() {
    let closed = conv(1, Status::Closed);
    let mut m = reply_to(msg(Channel::Email), "m-1");
    m.auto_generated = true;
    let alone = Facts { references: refs(&[("m-1", closed)]), ..Facts::default() };
    let p = placed(place(&m, &alone, &Policy::default(), now()));
    assert_eq!((p.rule, existing(&p), p.follow_up_of, p.reopen), (Rule::ReplyClosedAutomatic, closed.id, None, false));
    assert!(p.related_to.is_empty(), "it is with the thread it answers");

    // With the pair's ongoing conversation: no follow-up (R6), but I6 wants
    // it linked to the thread it answers.
    let ongoing = conv(2, Status::Waiting);
    let with_pair = Facts { pair_ongoing: Some(ongoing), ..alone };
    let p = placed(place(&m, &with_pair, &Policy::default(), now()));
    assert_eq!((existing(&p), p.follow_up_of, p.reopen), (ongoing.id, None, false));
    assert_eq!(p.related_to, vec![closed.id]);
}

#[test]
fn r6_automatic_sms_within_the_window_starts_a_plain_conversation() {
    let mut m = msg(Channel::Sms);
    m.auto_generated = true;
    let facts = Facts { pair_latest_closed: Some(conv(1, Status::Closed)), ..Facts::default() };
    let p = placed(place(&m, &facts, &Policy::default(), now()));
    assert_eq!((p.rule, p.follow_up_of), (Rule::New, None));
}

fn holder(n: u128, minute: i64) -> CopyHolder {
    CopyHolder { conversation_id: Uuid::from_u128(n), created_at: now() + Duration::minutes(minute) }
}

#[test]
fn r7_every_sibling_points_at_the_earliest_created() {
    let links = sibling_links(&[holder(3, 5), holder(1, 9), holder(2, 0)]);
    assert_eq!(links, vec![(Uuid::from_u128(1), Uuid::from_u128(2)), (Uuid::from_u128(3), Uuid::from_u128(2))]);
}

#[test]
fn r7_ties_are_broken_by_id_and_one_holder_links_nothing() {
    assert_eq!(sibling_links(&[holder(9, 0), holder(4, 0)]), vec![(Uuid::from_u128(9), Uuid::from_u128(4))]);
    assert!(sibling_links(&[holder(1, 0)]).is_empty());
    assert!(sibling_links(&[holder(1, 0), holder(1, 0)]).is_empty(), "two copies in one conversation link nothing");
}

#[test]
fn r7_links_do_not_depend_on_the_order_copies_arrive_in() {
    let set = [holder(1, 3), holder(2, 1), holder(3, 2), holder(4, 1)];
    let expected = sibling_links(&set);
    let mut reversed = set;
    reversed.reverse();
    assert_eq!(sibling_links(&reversed), expected);
    assert_eq!(sibling_links(&[set[2], set[0], set[3], set[1]]), expected);
}

/// R7 across Message-IDs (`stale_sibling_links`): a link goes only when no
/// Message-ID with copies at both its ends calls for it.
#[test]
fn a_sibling_link_goes_only_when_no_message_id_calls_for_it() {
    let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    let holders = |sets: &[(&str, &[CopyHolder])]| -> BTreeMap<String, Vec<CopyHolder>> {
        sets.iter().map(|(id, copies)| ((*id).to_owned(), copies.to_vec())).collect()
    };
    // X has copies in b and a (a earlier): X calls for b -> a, so it stays.
    let x = holders(&[("x", &[holder(1, 0), holder(2, 5)])]);
    assert!(stale_sibling_links(&[(b, a)], &x).is_empty());
    // No Message-ID left with copies in both: it goes.
    assert_eq!(stale_sibling_links(&[(b, a)], &holders(&[])), vec![(b, a)]);
    // Y's copies are in b and a too, but c holds an earlier copy: Y calls
    // for b -> c and a -> c, not b -> a; with X gone, b -> a goes.
    let y = holders(&[("y", &[holder(3, -5), holder(1, 0), holder(2, 5)])]);
    assert_eq!(stale_sibling_links(&[(b, a), (a, c)], &y), vec![(b, a)]);
    // The union: X keeps b -> a while Y keeps a -> c.
    let both = holders(&[("x", &[holder(1, 0), holder(2, 5)]), ("y", &[holder(3, -5), holder(1, 0)])]);
    assert!(stale_sibling_links(&[(b, a), (a, c)], &both).is_empty());
    // The direction counts: a -> b is not b -> a.
    assert_eq!(stale_sibling_links(&[(a, b)], &x), vec![(a, b)]);
}
