//! The product's vocabulary: channels, normalized addresses and the decoded
//! inbound message. Everything here is built through a constructor that
//! validates, so past the decoders no code handles a raw address string.
//!
//! No IO and no clock live here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;

/// The channel a customer wrote on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Messenger,
}

impl Channel {
    /// All channels, in the order configuration and reports list them.
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Messenger];

    /// The value stored in the `channel` columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Messenger => "messenger",
        }
    }

    /// Parses the stored column value back.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an address could not be normalized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} address {raw:?} normalizes to nothing")]
pub struct AddressError {
    /// What kind of address was expected (`email`, `phone`, `messenger id`).
    pub kind: &'static str,
    /// The input as received, for the dead letter's detail.
    pub raw: String,
}

/// A normalized email address: trimmed and lowercased, never empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Email addresses are trimmed and lowercased (contract section 1). The
    /// whole address is lowercased, local part included, because helpdesk
    /// users expect `Ana@X.com` and `ana@x.com` to be one customer.
    pub fn parse(raw: &str) -> Result<EmailAddress, AddressError> {
        non_empty(raw.trim().to_lowercase(), "email", raw).map(EmailAddress)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The domain part of an email address as text (participants are read
/// back from the database as text): what follows the last `@`, the whole
/// address when there is none. The sender policy's `domain` mode compares
/// these.
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, domain)| domain)
}

/// A normalized phone number: its digits only, without a leading `00`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Phone numbers keep only their digits, then lose a leading `00`
    /// international prefix: `+385 91 624 2493` and `00385916242493` are one
    /// number.
    pub fn parse(raw: &str) -> Result<PhoneNumber, AddressError> {
        let digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
        let normalized = digits.strip_prefix("00").map(str::to_owned).unwrap_or(digits);
        non_empty(normalized, "phone", raw).map(PhoneNumber)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Messenger page-scoped id (a person's or a page's), trimmed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessengerId(String);

impl MessengerId {
    /// Messenger ids are kept as given (senders send them as JSON strings or
    /// numbers; the decoder turns both into the same text).
    pub fn parse(raw: &str) -> Result<MessengerId, AddressError> {
        non_empty(raw.trim().to_owned(), "messenger id", raw).map(MessengerId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn non_empty(normalized: String, kind: &'static str, raw: &str) -> Result<String, AddressError> {
    if normalized.is_empty() {
        Err(AddressError { kind, raw: raw.to_owned() })
    } else {
        Ok(normalized)
    }
}

/// A normalized address of one channel's kind: an inbox or a customer's
/// email, an SMS number, a Messenger page or person. Comparisons and
/// lookups only ever see this form, and an address of one kind never equals
/// one of another, even when their text does (a phone `123` and a
/// Messenger id `123`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Address {
    Email(EmailAddress),
    Phone(PhoneNumber),
    Messenger(MessengerId),
}

impl Address {
    /// An email address ([`EmailAddress::parse`]).
    pub fn email(raw: &str) -> Result<Address, AddressError> {
        EmailAddress::parse(raw).map(Address::Email)
    }

    /// A phone number ([`PhoneNumber::parse`]).
    pub fn phone(raw: &str) -> Result<Address, AddressError> {
        PhoneNumber::parse(raw).map(Address::Phone)
    }

    /// A Messenger id ([`MessengerId::parse`]).
    pub fn messenger_id(raw: &str) -> Result<Address, AddressError> {
        MessengerId::parse(raw).map(Address::Messenger)
    }

    /// Normalizes `raw` the way addresses of `channel` are normalized.
    pub fn for_channel(channel: Channel, raw: &str) -> Result<Address, AddressError> {
        match channel {
            Channel::Email => Address::email(raw),
            Channel::Sms => Address::phone(raw),
            Channel::Messenger => Address::messenger_id(raw),
        }
    }

    /// The channel whose addresses are of this kind.
    pub fn channel(&self) -> Channel {
        match self {
            Address::Email(_) => Channel::Email,
            Address::Phone(_) => Channel::Sms,
            Address::Messenger(_) => Channel::Messenger,
        }
    }

    /// The email address, when this is one.
    pub fn as_email(&self) -> Option<&EmailAddress> {
        match self {
            Address::Email(email) => Some(email),
            Address::Phone(_) | Address::Messenger(_) => None,
        }
    }

    /// The normalized text, as the `endpoint` and `contact` columns hold it.
    pub fn as_str(&self) -> &str {
        match self {
            Address::Email(a) => a.as_str(),
            Address::Phone(a) => a.as_str(),
            Address::Messenger(a) => a.as_str(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The channel-provider's id of a message (email Message-ID without angle
/// brackets or `sha256:<hex>`, Infobip `messageId`, Twilio `MessageSid`,
/// Messenger `mid`). Never empty, trimmed. A message's own id and the ids
/// it refers to (`In-Reply-To`, `References`, Messenger `reply_to.mid`) are
/// all of this type: a reference is only ever compared with ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(String);

impl ExternalId {
    /// Trims the id; `None` when nothing is left.
    pub fn parse(raw: &str) -> Option<ExternalId> {
        let trimmed = raw.trim();
        (!trimmed.is_empty()).then(|| ExternalId(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Read-only access to the text; only [`ExternalId::parse`] makes one.
impl std::ops::Deref for ExternalId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// Tests name ids by literal; the product parses them.
#[cfg(test)]
impl From<&str> for ExternalId {
    fn from(raw: &str) -> ExternalId {
        ExternalId::parse(raw).expect("a test's id is not blank")
    }
}

#[cfg(test)]
impl From<String> for ExternalId {
    fn from(raw: String) -> ExternalId {
        ExternalId::from(raw.as_str())
    }
}

impl PartialEq<str> for ExternalId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ExternalId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for ExternalId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file the customer attached, described but not stored apart from the raw
/// source (email keeps the whole message in `messages.raw`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub name: Option<String>,
    pub content_type: Option<String>,
    /// Size in bytes of the decoded content, when known.
    pub size: Option<u64>,
    /// Where the provider keeps the file (Twilio `MediaUrlN`, Messenger payload url).
    pub url: Option<String>,
    /// A title the provider gives the attachment (Messenger `fallback` and
    /// location attachments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A shared location (Messenger `location` attachments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coordinates>,
}

/// A point on the map as the provider sent it, digits kept exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Coordinates {
    pub lat: serde_json::Number,
    pub long: serde_json::Number,
}

/// Channel details stored in `messages.details` (jsonb) for the agent
/// desktop: who else was addressed, the attachments, provider extras.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Details {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<String>,
    /// The sender's display name as the message gave it (unverified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Infobip `keyword`, Messenger postback payload and the like.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// Number of SMS parts the provider billed (Infobip `smsCount`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_count: Option<u32>,
    /// `message` or `postback` for Messenger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The fields from which NUL characters were removed before storing
    /// (Postgres refuses U+0000 in text); the raw source still has them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nul_removed: Vec<String>,
    /// What the decoder cut to its bound (`subject`, `sender_name`,
    /// `references`, `in_reply_to`, `to`, `cc`, `reply_to`, `mime_depth`,
    /// `mime_parts`, `attachments`, `keyword`, `kind`; see
    /// `decode::bounds`); an email's raw source is whole.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
}

/// One customer message, decoded and normalized. This is all the rest of the
/// worker sees of a Kafka record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    pub channel: Channel,
    /// Our side: the inbox, the SMS number, the page.
    pub endpoint: Address,
    /// The customer's side.
    pub contact: Address,
    pub external_id: ExternalId,
    pub subject: Option<String>,
    pub body_text: String,
    pub body_html: Option<String>,
    /// Email `In-Reply-To` (first id) or Messenger `reply_to.mid`.
    pub in_reply_to: Option<ExternalId>,
    /// Email `References`, oldest first as in the header.
    pub references: Vec<ExternalId>,
    /// RFC 3834 and friends: an auto-reply, a bulk or list mail, a bounce.
    pub auto_generated: bool,
    /// The sender's own date (email `Date`, Messenger `timestamp`).
    pub sent_at: Option<DateTime<Utc>>,
    /// When the provider received it (CloudEvents `time`, Infobip
    /// `receivedAt`), else when the record was produced.
    pub received_at: DateTime<Utc>,
    /// The raw RFC 5322 source, email only.
    pub raw: Option<Vec<u8>>,
    pub details: Details,
}

impl InboundMessage {
    /// The ids this message refers to, in the order the decision table tries
    /// them: `In-Reply-To` first, then `References` newest first.
    pub fn reference_candidates(&self) -> impl Iterator<Item = &ExternalId> {
        self.in_reply_to.iter().chain(self.references.iter().rev())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_forms_of_one_phone_number_are_equal() {
        for raw in ["(800) 100-20000", "800-100-20000", "80010020000", "(800)-100-20000"] {
            assert_eq!(Address::phone(raw).unwrap().as_str(), "80010020000", "{raw}");
        }
    }

    #[test]
    fn an_international_prefix_of_00_or_plus_is_the_same_number() {
        assert_eq!(Address::phone("+385 91 624 2493").unwrap().as_str(), "385916242493");
        assert_eq!(Address::phone("00385916242493").unwrap().as_str(), "385916242493");
    }

    #[test]
    fn a_phone_without_digits_is_an_error() {
        let err = Address::phone("call me").unwrap_err();
        assert_eq!(err.kind, "phone");
        assert!(Address::phone("00").is_err());
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(Address::email("  Ana.Horvat@Example.COM ").unwrap().as_str(), "ana.horvat@example.com");
        assert!(Address::email("   ").is_err());
    }

    #[test]
    fn messenger_ids_are_kept_as_given() {
        assert_eq!(Address::messenger_id("1254459154682919").unwrap().as_str(), "1254459154682919");
        assert!(Address::messenger_id("").is_err());
    }

    #[test]
    fn an_address_knows_its_channel_and_equal_text_of_two_kinds_is_not_equal() {
        for channel in Channel::ALL {
            assert_eq!(Address::for_channel(channel, "123").unwrap().channel(), channel);
        }
        assert_ne!(Address::phone("123").unwrap(), Address::messenger_id("123").unwrap());
        let email = Address::email("Ana@Example.com").unwrap();
        assert_eq!(email.as_email().map(|e| domain_of(e.as_str())), Some("example.com"));
        assert_eq!(Address::phone("123").unwrap().as_email(), None);
    }

    #[test]
    fn references_are_tried_in_reply_to_first_then_newest_first() {
        let msg = InboundMessage {
            channel: Channel::Email,
            endpoint: Address::email("support@acme.test").unwrap(),
            contact: Address::email("ana@example.com").unwrap(),
            external_id: ExternalId::parse("m3@example.com").unwrap(),
            subject: None,
            body_text: String::new(),
            body_html: None,
            in_reply_to: ExternalId::parse("m2"),
            references: ["m0", "m1", "m2"].into_iter().filter_map(ExternalId::parse).collect(),
            auto_generated: false,
            sent_at: None,
            received_at: DateTime::UNIX_EPOCH,
            raw: None,
            details: Details::default(),
        };
        let order: Vec<&str> = msg.reference_candidates().map(ExternalId::as_str).collect();
        assert_eq!(order, ["m2", "m2", "m1", "m0"]);
    }
}
