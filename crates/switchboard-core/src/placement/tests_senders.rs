//! The sender policy (contract section 3, version 2): who may join a
//! conversation by replying to one of its emails.

use super::batch::{plan_batch, BatchPlan, ConversationRow, ItemResult, LinkKind, Snapshot};
use super::tests::{conv, msg, now, reply_to};
use super::*;
use crate::domain::{Address, ExternalId};
use crate::placement::batch::MessageKey;

/// Ana's conversation 1 holds the stored message `m-1`; Bob took part in
/// it (Cc). A reply to `m-1` from `from` is placed under `policy`.
fn reply_from(from: &str, policy: SenderPolicy, by_endpoint: Option<SenderPolicy>) -> (BatchPlan, Conversation) {
    let thread = conv(1, Status::Open);
    let mut reply = reply_to(msg(Channel::Email), "m-1");
    reply.contact = Address::email(from).unwrap();
    reply.external_id = ExternalId::parse("reply-1").unwrap();
    let endpoint = reply.endpoint.to_string();
    let mut snapshot = Snapshot {
        now: now(),
        messages: [(MessageKey::new(Channel::Email, endpoint.clone(), "m-1"), thread.id)].into(),
        conversations: [(thread.id, ConversationRow { conversation: thread, merged_into: None })].into(),
        ..Snapshot::default()
    };
    // What the store found: Ana and Bob took part; example.com is theirs.
    for address in ["ana@example.com", "bob@example.com"] {
        snapshot.participants.insert((thread.id, address.to_owned()));
    }
    snapshot.participant_domains.insert((thread.id, "example.com".to_owned()));
    let policy = Policy {
        reply_senders: policy,
        reply_senders_by_endpoint: by_endpoint.map(|p| (endpoint, p)).into_iter().collect(),
        ..Policy::default()
    };
    let mut n = 100;
    let plan = plan_batch(&[&reply], snapshot, &policy, || {
        n += 1;
        Uuid::from_u128(n)
    });
    (plan, thread)
}

fn landed(plan: &BatchPlan) -> (Rule, Uuid, bool) {
    match plan.results[0] {
        ItemResult::Placed { rule, conversation_id, created, .. } => (rule, conversation_id, created),
        ItemResult::Duplicate => panic!("a duplicate"),
    }
}

fn related(plan: &BatchPlan) -> Vec<(Uuid, Uuid)> {
    plan.links.iter().filter(|l| l.kind == LinkKind::Related).map(|l| (l.from, l.to)).collect()
}

#[test]
fn a_forged_in_reply_to_from_a_stranger_starts_its_own_conversation_linked_to_the_referenced_one() {
    let (plan, thread) = reply_from("mallory@evil.example", SenderPolicy::Participants, None);
    let (rule, landed_in, created) = landed(&plan);
    assert_eq!((rule, created), (Rule::New, true), "the reference counts as not resolving");
    assert_ne!(landed_in, thread.id);
    assert_eq!(related(&plan), [(landed_in, thread.id)], "linked once, so the agent sees the context");
    assert_eq!(plan.sender_refusals, 1);
}

#[test]
fn a_colleague_who_was_in_cc_joins_the_conversation() {
    let (plan, thread) = reply_from("bob@example.com", SenderPolicy::Participants, None);
    assert_eq!(landed(&plan), (Rule::ReplyOngoing, thread.id, false));
    assert!(related(&plan).is_empty());
    assert_eq!(plan.sender_refusals, 0);
}

#[test]
fn under_domain_a_sender_of_a_participants_domain_joins_and_others_do_not() {
    let (plan, thread) = reply_from("carol@example.com", SenderPolicy::Domain, None);
    assert_eq!(landed(&plan), (Rule::ReplyOngoing, thread.id, false));
    let (plan, _) = reply_from("carol@example.com", SenderPolicy::Participants, None);
    assert_eq!(landed(&plan).0, Rule::New, "not a participant by address");
    let (plan, _) = reply_from("mallory@evil.example", SenderPolicy::Domain, None);
    assert_eq!((landed(&plan).0, plan.sender_refusals), (Rule::New, 1));
}

#[test]
fn under_any_every_reference_resolves_as_in_version_one() {
    let (plan, thread) = reply_from("mallory@evil.example", SenderPolicy::Any, None);
    assert_eq!(landed(&plan), (Rule::ReplyOngoing, thread.id, false));
    assert_eq!(plan.sender_refusals, 0);
}

#[test]
fn the_policy_of_the_endpoint_overrides_the_default() {
    let (plan, thread) = reply_from("mallory@evil.example", SenderPolicy::Participants, Some(SenderPolicy::Any));
    assert_eq!(landed(&plan).1, thread.id);
    let (plan, thread) = reply_from("mallory@evil.example", SenderPolicy::Any, Some(SenderPolicy::Participants));
    assert_ne!(landed(&plan).1, thread.id);
}

#[test]
fn a_recipient_of_an_earlier_message_of_the_batch_joins_its_conversation() {
    // Ana writes to support with Dan in Cc; Dan answers in the same batch.
    let mut first = msg(Channel::Email);
    first.external_id = ExternalId::parse("first").unwrap();
    first.details.cc = vec!["dan@partner.example".into()];
    let mut answer = reply_to(msg(Channel::Email), "first");
    answer.contact = Address::email("dan@partner.example").unwrap();
    answer.external_id = ExternalId::parse("answer").unwrap();
    let mut n = 0;
    let plan =
        plan_batch(&[&first, &answer], Snapshot { now: now(), ..Snapshot::default() }, &Policy::default(), || {
            n += 1;
            Uuid::from_u128(n)
        });
    let convs: Vec<Uuid> = plan.messages.iter().map(|m| m.conversation_id).collect();
    assert_eq!(convs[0], convs[1], "Dan was addressed, so Dan is a participant");
    assert_eq!(plan.sender_refusals, 0);
}

#[test]
fn sms_and_messenger_are_not_subject_to_the_policy() {
    let thread = conv(1, Status::Open);
    let mut reply = reply_to(msg(Channel::Messenger), "mid-1");
    reply.external_id = ExternalId::parse("mid-2").unwrap();
    let snapshot = Snapshot {
        now: now(),
        messages: [(MessageKey::new(Channel::Messenger, reply.endpoint.as_str(), "mid-1"), thread.id)].into(),
        conversations: [(thread.id, ConversationRow { conversation: thread, merged_into: None })].into(),
        ..Snapshot::default()
    };
    let plan = plan_batch(&[&reply], snapshot, &Policy::default(), || Uuid::from_u128(50));
    assert_eq!(landed(&plan), (Rule::ReplyOngoing, thread.id, false));
}
