//! The sender policy (contract section 3, version 2), as the batch planner
//! applies it: who took part in a conversation, and whether a reference's
//! sender may join the conversation it names. Pure, like the rest of
//! placement: the store reads the participation facts into the
//! [`Snapshot`], the planner carries the batch's own forward.

use super::batch::Snapshot;
use super::{Policy, SenderPolicy};
use crate::domain::{domain_of, Address, InboundMessage};
use uuid::Uuid;

/// The addresses a message makes participants of its conversation: its
/// sender and its `To` and `Cc` (normalized by the decoder).
pub(crate) fn participants_of(msg: &InboundMessage) -> impl Iterator<Item = &str> {
    std::iter::once(msg.contact.as_str()).chain(msg.details.to.iter().chain(&msg.details.cc).map(String::as_str))
}

/// Whether the sender of `msg` may join the conversation that holds a
/// message it references (stored in `holder`), under `policy`.
pub(super) fn admitted(snapshot: &Snapshot, msg: &InboundMessage, holder: Uuid, policy: &Policy) -> bool {
    may_join(snapshot, &msg.endpoint, msg.contact.as_str(), holder, policy)
}

/// Whether `sender`, writing to `endpoint`, may join the conversation `conv`
/// (or the end of its merge chain) under `policy`: only references to an
/// inbox's email are policed (an SMS number or a page has no strangers'
/// threads to join).
pub(super) fn may_join(snapshot: &Snapshot, endpoint: &Address, sender: &str, conv: Uuid, policy: &Policy) -> bool {
    let Some(inbox) = endpoint.as_email() else {
        return true;
    };
    match policy.reply_senders_by_endpoint.get(inbox.as_str()).copied().unwrap_or(policy.reply_senders) {
        SenderPolicy::Any => true,
        SenderPolicy::Participants => {
            snapshot.chain(conv).into_iter().any(|c| snapshot.participants.contains(&(c, sender.to_owned())))
        }
        SenderPolicy::Domain => snapshot
            .chain(conv)
            .into_iter()
            .any(|c| snapshot.participant_domains.contains(&(c, domain_of(sender).to_owned()))),
    }
}
