//! `messenger.received`: a Meta Messenger Platform webhook body,
//! `{"object":"page","entry":[{"messaging":[...]}]}`, with up to
//! [`super::bounds::MAX_ITEMS`] items in all, read in payload order.
//!
//! Customer messages and postbacks become messages (a postback's text is its
//! button title). The page's own echoes, delivery and read receipts,
//! reactions, unsent (`is_deleted`) messages and every other kind of item or
//! entry (`standby`, `optin`, `referral`, ...) are skipped and counted under
//! their own name when it is one Switchboard knows (`skip::KNOWN_NAMES`),
//! else as `other` (contract sections 1 and 5), never dead-lettered: they
//! are normal traffic, not bad input. An item that is malformed is invalid
//! on its own: the rest of the webhook is still placed (contract section 5).

use super::cloudevent::CloudEvent;
use super::{sha256_hex, DecodeError, Item, Items, JsonText, SkipKind};
use crate::domain::{Address, Attachment, Channel, Coordinates, Details, ExternalId, InboundMessage};
use chrono::{DateTime, Utc};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

/// The webhook body; fields Switchboard does not use are ignored. Entries
/// are kept as JSON objects: besides `messaging`, an entry may carry
/// `standby` (handover protocol) or other lists, each counted by name.
#[derive(Deserialize)]
struct Webhook {
    object: Option<String>,
    entry: Option<Vec<Value>>,
}

/// The entry fields that describe the entry itself rather than carry events.
const ENTRY_METADATA: [&str; 2] = ["id", "time"];
/// The messaging item fields that are not its event.
const ITEM_METADATA: [&str; 3] = ["sender", "recipient", "timestamp"];

/// One messaging item. Exactly one of the event fields is expected; the
/// receipts are only checked for presence.
#[derive(Deserialize)]
struct Messaging {
    sender: Option<Party>,
    recipient: Option<Party>,
    timestamp: Option<JsonText>,
    message: Option<MessageEvent>,
    postback: Option<PostbackEvent>,
    delivery: Option<IgnoredAny>,
    read: Option<IgnoredAny>,
    reaction: Option<IgnoredAny>,
}

/// A sender or recipient. Guests of the customer chat plugin have no PSID
/// yet; Meta names them by `user_ref`, which then is the contact.
#[derive(Deserialize)]
struct Party {
    id: Option<JsonText>,
    user_ref: Option<JsonText>,
}

#[derive(Deserialize)]
struct MessageEvent {
    mid: Option<JsonText>,
    text: Option<String>,
    attachments: Option<Vec<MessengerAttachment>>,
    reply_to: Option<ReplyTo>,
    is_echo: Option<bool>,
    is_deleted: Option<bool>,
    is_unsupported: Option<bool>,
    quick_reply: Option<QuickReply>,
}

#[derive(Deserialize)]
struct MessengerAttachment {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Shapes differ by type: a `url` (media), `coordinates` (location), a
    /// `title` and `url` (fallback, in older webhooks), a product, a string.
    payload: Option<Value>,
    /// Fallback attachments carry these beside the payload, not in it.
    title: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct ReplyTo {
    mid: Option<JsonText>,
}

#[derive(Deserialize)]
struct QuickReply {
    payload: Option<String>,
}

#[derive(Deserialize)]
struct PostbackEvent {
    title: Option<String>,
    payload: Option<String>,
    mid: Option<JsonText>,
}

/// The parts of a message that depend on the item's kind.
struct Content {
    external_id: ExternalId,
    body_text: String,
    in_reply_to: Option<ExternalId>,
    details: Details,
}

/// Decodes one Messenger event into its messages, skipped items and invalid
/// items, in payload order. An event with none of them is for the caller to
/// account for. Only a body that is not a page webhook at all fails whole.
pub(crate) fn decode(event: &CloudEvent, received_at: DateTime<Utc>) -> Result<Items, DecodeError> {
    let webhook: Webhook = serde_json::from_slice(&event.data)
        .map_err(|e| DecodeError::bad_payload(format!("The Messenger payload is not a valid webhook body: {e}.")))?;
    if webhook.object.as_deref() != Some("page") {
        return Err(DecodeError::bad_payload(format!(
            "The Messenger webhook's object is {:?}, not \"page\".",
            webhook.object.unwrap_or_default()
        )));
    }
    let entries = webhook.entry.unwrap_or_default();
    super::bounds::check_items("Messenger webhook", entries.iter().map(entry_items).sum())?;
    let mut items = Items::default();
    for (e, entry) in entries.into_iter().enumerate() {
        let Value::Object(entry) = entry else {
            items.push(Err(DecodeError::bad_payload(format!("Entry {e} is not a JSON object."))));
            continue;
        };
        for (key, value) in entry {
            match (key.as_str(), value) {
                ("messaging", Value::Array(list)) => {
                    for (m, item) in list.into_iter().enumerate() {
                        let position = format!("messaging item {m} of entry {e}");
                        items.push(decode_item(&position, item, received_at));
                    }
                }
                (key, _) if ENTRY_METADATA.contains(&key) => {}
                (key, Value::Array(list)) => items.skipped.extend(list.iter().map(|_| SkipKind::named(key))),
                (key, Value::Object(_)) => items.skipped.push(SkipKind::named(key)),
                // A scalar is a property of the entry, not an event.
                _ => {}
            }
        }
    }
    Ok(items)
}

/// How many items `decode` reads from one entry: each element of its
/// lists (`messaging`, `standby`, ...) and each other event object. An
/// entry that is not an object is one (invalid) item.
fn entry_items(entry: &Value) -> usize {
    let Value::Object(entry) = entry else { return 1 };
    entry
        .iter()
        .map(|(key, value)| match value {
            _ if ENTRY_METADATA.contains(&key.as_str()) => 0,
            Value::Array(list) => list.len(),
            Value::Object(_) => 1,
            _ => 0,
        })
        .sum()
}

fn decode_item(position: &str, raw: Value, received_at: DateTime<Utc>) -> Result<Item, DecodeError> {
    let item = Messaging::deserialize(&raw)
        .map_err(|e| DecodeError::bad_payload(format!("The {position} cannot be read: {e}.")))?;
    if let Some(message) = &item.message {
        if message.is_echo == Some(true) {
            return Ok(Item::Skip(SkipKind::Echo));
        }
        // An unsent message: its content is gone, and it must never reopen
        // the conversation as if the customer had written.
        if message.is_deleted == Some(true) {
            return Ok(Item::Skip(SkipKind::Deleted));
        }
    }
    let receipt = [
        (item.delivery.is_some(), SkipKind::Delivery),
        (item.read.is_some(), SkipKind::Read),
        (item.reaction.is_some(), SkipKind::Reaction),
    ];
    if let Some((_, kind)) = receipt.into_iter().find(|(present, _)| *present) {
        return Ok(Item::Skip(kind));
    }
    if item.message.is_none() && item.postback.is_none() {
        // Named after its event field (`optin`, `referral`, `message_edit`...).
        let event = raw.as_object().and_then(|o| o.keys().find(|k| !ITEM_METADATA.contains(&k.as_str())));
        return Ok(Item::Skip(event.map_or(SkipKind::Other, |k| SkipKind::named(k))));
    }

    let id =
        |party: Option<Party>| party.and_then(|p| p.id.or(p.user_ref)).map(JsonText::into_string).unwrap_or_default();
    let contact = Address::messenger_id(&id(item.sender))
        .map_err(|e| DecodeError::bad_address(&format!("contact (sender.id of {position})"), &e))?;
    let endpoint = Address::messenger_id(&id(item.recipient))
        .map_err(|e| DecodeError::bad_address(&format!("endpoint (recipient.id of {position})"), &e))?;
    let timestamp = item.timestamp.map(JsonText::into_string).unwrap_or_default();
    let content = match (item.message, item.postback) {
        (Some(message), _) => message_content(position, message)?,
        (None, Some(postback)) => postback_content(postback, [contact.as_str(), endpoint.as_str(), timestamp.trim()]),
        // Ruled out above; kept total rather than unreachable.
        (None, None) => return Ok(Item::Skip(SkipKind::Other)),
    };
    Ok(Item::Message(Box::new(InboundMessage {
        channel: Channel::Messenger,
        endpoint,
        contact,
        external_id: content.external_id,
        subject: None,
        body_text: content.body_text,
        body_html: None,
        in_reply_to: content.in_reply_to,
        references: Vec::new(),
        auto_generated: false,
        sent_at: timestamp.trim().parse().ok().and_then(DateTime::from_timestamp_millis),
        received_at: timestamp.trim().parse().ok().and_then(DateTime::from_timestamp_millis).unwrap_or(received_at),
        raw: None,
        details: content.details,
    })))
}

/// A customer's message: text, attachments, maybe a reply to an earlier one.
fn message_content(position: &str, message: MessageEvent) -> Result<Content, DecodeError> {
    let external_id = message
        .mid
        .map(JsonText::into_string)
        .and_then(|mid| ExternalId::parse(&mid))
        .ok_or_else(|| DecodeError::bad_payload(format!("The message in {position} has no mid.")))?;
    let attachments = message.attachments.unwrap_or_default().into_iter().map(attachment).collect();
    let kind = if message.is_unsupported == Some(true) { "unsupported" } else { "message" };
    Ok(Content {
        external_id,
        body_text: message.text.unwrap_or_default(),
        in_reply_to: message
            .reply_to
            .and_then(|r| r.mid)
            .map(JsonText::into_string)
            .and_then(|mid| ExternalId::parse(&mid)),
        details: Details {
            attachments,
            keyword: message.quick_reply.and_then(|q| q.payload),
            kind: Some(kind.to_owned()),
            ..Details::default()
        },
    })
}

/// What an attachment carries, wherever this kind keeps it: the url and
/// title in the payload or beside it (fallback), the coordinates of a shared
/// location.
fn attachment(a: MessengerAttachment) -> Attachment {
    let payload = a.payload.as_ref();
    let text = |name: &str| payload.and_then(|p| p.get(name)).and_then(Value::as_str).map(str::to_owned);
    let coordinates = payload.and_then(|p| p.get("coordinates")).and_then(|c| {
        let number = |name: &str| match c.get(name) {
            Some(Value::Number(n)) => Some(n.clone()),
            _ => None,
        };
        Some(Coordinates { lat: number("lat")?, long: number("long")? })
    });
    Attachment {
        name: None,
        url: text("url").or(a.url),
        title: text("title").or(a.title),
        content_type: a.kind,
        size: None,
        coordinates,
    }
}

/// A button press, stored as a message whose text is the button's title.
/// Older postbacks carry no `mid`; their id is then derived from who pressed
/// what when (`sender`, `recipient`, `timestamp`: the normalized ids and the
/// timestamp text), so a redelivery is still recognised as a duplicate.
fn postback_content(postback: PostbackEvent, [sender, recipient, timestamp]: [&str; 3]) -> Content {
    let payload = postback.payload.unwrap_or_default();
    let external_id =
        postback.mid.map(JsonText::into_string).and_then(|mid| ExternalId::parse(&mid)).unwrap_or_else(|| {
            let key = format!("{sender}\n{recipient}\n{timestamp}\n{payload}");
            let id = format!("postback:{}", sha256_hex(key.as_bytes()));
            // Cannot panic: the id starts with `postback:`, so it is never blank.
            ExternalId::parse(&id).expect("a postback: id is never blank")
        });
    Content {
        external_id,
        body_text: postback.title.unwrap_or_default(),
        in_reply_to: None,
        details: Details {
            keyword: (!payload.is_empty()).then_some(payload),
            kind: Some("postback".to_owned()),
            ..Details::default()
        },
    }
}

#[cfg(test)]
mod tests;
