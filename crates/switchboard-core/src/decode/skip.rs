//! What a skipped item was, under a name from a closed list: these names
//! become the `kind` label of `switchboard_skipped_entries_total` and a log
//! field, so a sender must never be able to add one (contract section 5,
//! bounded inputs: a new key in a payload never adds a metric series).

/// The Messenger webhook fields that carry an event other than a customer
/// message, counted under their own name when an entry or a messaging item
/// holds one. Taken from Meta's webhook reference (the `messaging_*`,
/// handover, `standby`, `message_edits` and commerce subscriptions) and the
/// provider payloads the tests decode. `policy-enforcement` is spelled as
/// Meta sends it; `changes` is the entry list of the page feed webhooks.
/// Any other name counts as [`SkipKind::Other`].
pub const KNOWN_NAMES: [&str; 17] = [
    "account_linking",
    "app_roles",
    "changes",
    "checkout_update",
    "game_play",
    "message_edit",
    "messaging_feedback",
    "optin",
    "pass_thread_control",
    "payment",
    "policy-enforcement",
    "pre_checkout",
    "referral",
    "request_thread_control",
    "response_feedback",
    "standby",
    "take_thread_control",
];

/// Why part of a record was skipped rather than stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipKind {
    /// A Messenger `message` with `is_echo`: the page's own outbound message.
    Echo,
    /// A Messenger `delivery` receipt.
    Delivery,
    /// A Messenger `read` receipt.
    Read,
    /// A Messenger `reaction` to a message.
    Reaction,
    /// A Messenger `message` with `is_deleted`: the customer unsent a
    /// message. It carries no content and must not reopen anything.
    Deleted,
    /// A provider's report on a message we sent (an Infobip delivery
    /// report, a Twilio status callback) published as inbound traffic.
    StatusReport,
    /// A Messenger item or entry of a kind in [`KNOWN_NAMES`] (`standby`,
    /// `optin`, `referral`, `account_linking`, ...); see [`SkipKind::named`].
    Named(&'static str),
    /// A Messenger item that names no event, or one whose name is not in
    /// [`KNOWN_NAMES`].
    Other,
    /// An SMS or Messenger event that carries zero messages.
    EmptyBatch,
}

impl SkipKind {
    /// Every name [`SkipKind::as_str`] can return besides [`KNOWN_NAMES`].
    const FIXED_NAMES: [&'static str; 8] =
        ["echo", "delivery", "read", "reaction", "deleted", "status_report", "other", "empty_batch"];

    /// A skip named after the payload's own key: its name when it is one of
    /// [`KNOWN_NAMES`], else [`SkipKind::Other`]. Names come from outside,
    /// and the counters keyed by them must not grow with what senders send.
    pub fn named(name: &str) -> SkipKind {
        KNOWN_NAMES.iter().copied().find(|known| *known == name).map_or(SkipKind::Other, SkipKind::Named)
    }

    /// A stable name for metrics and logs, always from a closed set.
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipKind::Echo => "echo",
            SkipKind::Delivery => "delivery",
            SkipKind::Read => "read",
            SkipKind::Reaction => "reaction",
            SkipKind::Deleted => "deleted",
            SkipKind::StatusReport => "status_report",
            SkipKind::Named(name) => name,
            SkipKind::Other => "other",
            SkipKind::EmptyBatch => "empty_batch",
        }
    }

    /// `name` as a metric label: itself when it is a name [`SkipKind::as_str`]
    /// can return, else `other`. For counters handed a name as text, so that
    /// no caller can add a label value the decoder would not.
    pub fn label(name: &str) -> &'static str {
        KNOWN_NAMES.iter().chain(Self::FIXED_NAMES.iter()).find(|known| **known == name).copied().unwrap_or("other")
    }
}
