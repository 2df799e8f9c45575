//! The sender policy (contract section 3, version 2), as the batch planner
//! applies it: who took part in a conversation, and whether a reference's
//! sender may join the conversation it names. Pure, like the rest of
//! placement: the store reads the participation facts into the
//! [`Snapshot`], the planner carries the batch's own forward.

use super::batch::Snapshot;
use super::{Policy, SenderPolicy};
use crate::domain::{Address, Channel, InboundMessage};
use uuid::Uuid;

/// The addresses a message makes participants of its conversation: its
/// sender and its `To` and `Cc` (normalized by the decoder).
pub(crate) fn participants_of(msg: &InboundMessage) -> impl Iterator<Item = &str> {
    std::iter::once(msg.contact.as_str()).chain(msg.details.to.iter().chain(&msg.details.cc).map(String::as_str))
}

/// The domain of an email address (what follows the last `@`).
pub fn domain(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, domain)| domain)
}

/// Whether the sender of `msg` may join the conversation that holds a
/// message it references (stored in `holder`), under `policy`.
pub(super) fn admitted(snapshot: &Snapshot, msg: &InboundMessage, holder: Uuid, policy: &Policy) -> bool {
    may_join(snapshot, msg.channel, &msg.endpoint, msg.contact.as_str(), holder, policy)
}

/// Whether `sender`, writing to `endpoint`, may join the conversation `conv`
/// (or the end of its merge chain) under `policy`: references by anyone
/// but email are not policed.
pub(super) fn may_join(
    snapshot: &Snapshot,
    channel: Channel,
    endpoint: &Address,
    sender: &str,
    conv: Uuid,
    policy: &Policy,
) -> bool {
    if channel != Channel::Email {
        return true;
    }
    match policy.reply_senders_by_endpoint.get(endpoint.as_str()).copied().unwrap_or(policy.reply_senders) {
        SenderPolicy::Any => true,
        SenderPolicy::Participants => {
            snapshot.chain(conv).into_iter().any(|c| snapshot.participants.contains(&(c, sender.to_owned())))
        }
        SenderPolicy::Domain => snapshot
            .chain(conv)
            .into_iter()
            .any(|c| snapshot.participant_domains.contains(&(c, domain(sender).to_owned()))),
    }
}
