//! The rows and edges added with issue 9: R1r (replies that came first) and
//! the R4 window measured from the message's own receive time.

use super::tests::{conv, existing, msg, new, now, placed, refs, reply_to};
use super::*;
use crate::placement::batch::MessageKey;

#[test]
fn r1r_a_parent_whose_reply_came_first_joins_the_replys_ongoing_conversation() {
    let reply_conv = conv(4, Status::Open);
    let facts = Facts { replies_first: vec![reply_conv], ..Facts::default() };
    let p = placed(place(&msg(Channel::Email), &facts, &Policy::default(), now()));
    assert_eq!((p.rule, existing(&p)), (Rule::RepliesFirst, reply_conv.id));
    assert_eq!(p.follow_up_of, None);
}

#[test]
fn r1r_the_earliest_stored_reply_decides() {
    // Replies stored in conversations 7, 3, 7, 5, in that order.
    let (c7, c3, c5) = (conv(7, Status::Pending), conv(3, Status::Open), conv(5, Status::Closed));
    let facts = Facts { replies_first: vec![c7, c3, c7, c5], ..Facts::default() };
    let p = placed(place(&msg(Channel::Email), &facts, &Policy::default(), now()));
    assert_eq!((p.rule, existing(&p)), (Rule::RepliesFirst, c7.id), "earliest stored, not lowest id");
}

#[test]
fn r1r_comes_before_r3_the_pair_conversation() {
    let (reply_conv, pair) = (conv(4, Status::Open), conv(9, Status::Open));
    let facts = Facts { replies_first: vec![reply_conv], pair_ongoing: Some(pair), ..Facts::default() };
    let p = placed(place(&msg(Channel::Messenger), &facts, &Policy::default(), now()));
    assert_eq!((p.rule, existing(&p)), (Rule::RepliesFirst, reply_conv.id));
}

#[test]
fn r1r_does_not_apply_when_one_of_the_messages_own_references_resolves() {
    let (thread, reply_conv) = (conv(1, Status::Open), conv(4, Status::Open));
    let facts = Facts { references: refs(&[("m-1", thread)]), replies_first: vec![reply_conv], ..Facts::default() };
    let p = placed(place(&reply_to(msg(Channel::Email), "m-1"), &facts, &Policy::default(), now()));
    assert_eq!((p.rule, existing(&p)), (Rule::ReplyOngoing, thread.id));

    let closed = conv(2, Status::Closed);
    let facts = Facts { references: refs(&[("m-1", closed)]), replies_first: vec![reply_conv], ..Facts::default() };
    let p = placed(place(&reply_to(msg(Channel::Email), "m-1"), &facts, &Policy::default(), now()));
    assert_eq!(p.rule, Rule::ReplyClosedFollowUp, "R2 comes before R1r");
}

#[test]
fn r1r_when_the_earliest_replys_conversation_is_closed_goes_on_with_r3_and_r4() {
    let (closed, later_open, pair) = (conv(4, Status::Closed), conv(6, Status::Open), conv(9, Status::Waiting));
    let with_pair = Facts { replies_first: vec![closed, later_open], pair_ongoing: Some(pair), ..Facts::default() };
    let p = placed(place(&msg(Channel::Email), &with_pair, &Policy::default(), now()));
    assert_eq!((p.rule, existing(&p), p.reopen), (Rule::SamePair, pair.id, true));

    let alone = Facts { replies_first: vec![closed], ..Facts::default() };
    let p = placed(place(&msg(Channel::Email), &alone, &Policy::default(), now()));
    assert_eq!(p.rule, Rule::New);
}

#[test]
fn r1r_with_r5_and_r6_a_customer_parent_reopens_an_automatic_one_does_not() {
    let solved = conv(4, Status::Solved);
    let facts = Facts { replies_first: vec![solved, conv(8, Status::Open)], ..Facts::default() };
    let p = placed(place(&msg(Channel::Email), &facts, &Policy::default(), now()));
    assert!(p.reopen);
    let mut auto = msg(Channel::Email);
    auto.auto_generated = true;
    let p = placed(place(&auto, &facts, &Policy::default(), now()));
    assert_eq!((p.rule, p.reopen, p.follow_up_of), (Rule::RepliesFirst, false, None));
}

#[test]
fn r4_the_window_runs_to_when_the_message_was_received_not_to_when_it_is_processed() {
    // Closed a day before `now()`; the message was received 12 hours after
    // the close and is processed 8 days later.
    let closed = conv(1, Status::Closed);
    let facts = Facts { pair_latest_closed: Some(closed), ..Facts::default() };
    let mut m = msg(Channel::Sms);
    m.received_at = now() - Duration::hours(12);
    let later = now() + Duration::days(8);
    let p = placed(place(&m, &facts, &Policy::default(), later));
    assert_eq!((p.rule, p.follow_up_of), (Rule::NewFollowUp, Some(closed.id)));
    assert_eq!(new(&p).copy_from, Some(closed.id));
}

#[test]
fn r4_a_message_received_after_the_window_is_new_even_if_processed_at_once() {
    let closed = conv(1, Status::Closed); // closed a day ago
    let facts = Facts { pair_latest_closed: Some(closed), ..Facts::default() };
    let two_days = Policy { messenger_follow_up_window: Some(Duration::hours(20)), ..Policy::default() };
    let p = placed(place(&msg(Channel::Messenger), &facts, &two_days, now()));
    assert_eq!(p.rule, Rule::New, "received 24 h after the close, window 20 h");
}

#[test]
fn r4_a_receive_time_ahead_of_the_processing_clock_is_capped_at_the_clock() {
    // A gateway clock a week fast must not push the message out of the window.
    let closed = conv(1, Status::Closed);
    let facts = Facts { pair_latest_closed: Some(closed), ..Facts::default() };
    let mut m = msg(Channel::Sms);
    m.received_at = now() + Duration::days(7);
    let p = placed(place(&m, &facts, &Policy::default(), now()));
    assert_eq!(p.rule, Rule::NewFollowUp);
}

#[test]
fn i5_two_parents_in_one_batch_whose_replies_sit_in_each_others_conversations_link_them_once() {
    use super::batch::{plan_batch, ConversationRow, Snapshot};
    use crate::domain::ExternalId;
    // Replies to p-1 were stored first in A, then in B; replies to p-2
    // first in B, then in A. R1r places p-1 with A (linking B to it) and
    // p-2 with B (linking A to it): one pair, which I5 links once.
    let (a, b) = (conv(1, Status::Open), conv(2, Status::Open));
    let parent = |id: &str| {
        let mut m = msg(Channel::Email);
        m.external_id = ExternalId::parse(id).unwrap();
        m
    };
    let (p1, p2) = (parent("p-1"), parent("p-2"));
    let key = |id: &str| MessageKey::new(Channel::Email, p1.endpoint.as_str(), id);
    let snapshot = Snapshot {
        now: now(),
        conversations: [a, b].map(|c| (c.id, ConversationRow { conversation: c, merged_into: None })).into(),
        replies: [(key("p-1"), vec![a.id, b.id]), (key("p-2"), vec![b.id, a.id])].into(),
        ..Snapshot::default()
    };
    let mut n = 100;
    let plan = plan_batch(&[&p1, &p2], snapshot, &Policy::default(), || {
        n += 1;
        Uuid::from_u128(n)
    });
    let related: Vec<(Uuid, Uuid)> =
        plan.links.iter().filter(|l| l.kind == batch::LinkKind::Related).map(|l| (l.from, l.to)).collect();
    assert_eq!(related, [(b.id, a.id)], "the first parent's link only; the reverse is the same pair");
    let landed: Vec<Uuid> = plan.messages.iter().map(|m| m.conversation_id).collect();
    assert_eq!(landed, [a.id, b.id], "each parent still joins its earliest reply's conversation");
}

#[test]
fn each_placed_message_carries_its_conversations_status_before_and_after() {
    use super::batch::{plan_batch, ConversationRow, Snapshot};
    use crate::domain::ExternalId;
    // A solved conversation holds `m-1`; the batch brings two replies to it
    // (R5 reopens it, then the second finds it open) and a new SMS (R4).
    let solved = conv(1, Status::Solved);
    let reply = |id: &str| {
        let mut m = reply_to(msg(Channel::Email), "m-1");
        m.external_id = ExternalId::parse(id).unwrap();
        m
    };
    let (first, second, sms) = (reply("r-1"), reply("r-2"), msg(Channel::Sms));
    let snapshot = Snapshot {
        now: now(),
        messages: [(MessageKey::new(Channel::Email, first.endpoint.as_str(), "m-1"), solved.id)].into(),
        conversations: [(solved.id, ConversationRow { conversation: solved, merged_into: None })].into(),
        // Ana wrote `m-1`, so the sender policy lets her replies join.
        participants: [(solved.id, first.contact.to_string())].into(),
        ..Snapshot::default()
    };
    let mut n = 100;
    let plan = plan_batch(&[&first, &second, &sms], snapshot, &Policy::default(), || {
        n += 1;
        Uuid::from_u128(n)
    });
    let statuses: Vec<(Option<Status>, Status)> =
        plan.messages.iter().map(|m| (m.status_before, m.status_after)).collect();
    assert_eq!(
        statuses,
        [(Some(Status::Solved), Status::Open), (Some(Status::Open), Status::Open), (None, Status::Open)],
        "the reopen, then a reply to the reopened conversation, then a new one"
    );
}
