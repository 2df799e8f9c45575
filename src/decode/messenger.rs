//! `messenger.received`: a Meta Messenger Platform webhook body,
//! `{"object":"page","entry":[{"messaging":[...]}]}`, with any number of
//! entries and messaging items, read in payload order.
//!
//! Customer messages and postbacks become messages (a postback's text is its
//! button title). The page's own echoes, delivery and read receipts,
//! reactions and every other kind of item are skipped and counted (contract
//! section 1), never dead-lettered: they are normal traffic, not bad input.

use super::cloudevent::CloudEvent;
use super::{sha256_hex, DecodeError, JsonText, SkipKind};
use crate::domain::{Address, Attachment, Channel, Details, ExternalId, InboundMessage};
use chrono::{DateTime, Utc};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

/// The webhook body; fields Switchboard does not use are ignored.
#[derive(Deserialize)]
struct Webhook {
    object: Option<String>,
    entry: Option<Vec<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    messaging: Option<Vec<Messaging>>,
}

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

#[derive(Deserialize)]
struct Party {
    id: Option<JsonText>,
}

#[derive(Deserialize)]
struct MessageEvent {
    mid: Option<JsonText>,
    text: Option<String>,
    attachments: Option<Vec<MessengerAttachment>>,
    reply_to: Option<ReplyTo>,
    is_echo: Option<bool>,
    quick_reply: Option<QuickReply>,
}

#[derive(Deserialize)]
struct MessengerAttachment {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Shapes differ by type (a url, coordinates, a product); only `url` is read.
    payload: Option<Value>,
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

/// What one messaging item turned out to be. The message is boxed to keep
/// the skip variant small.
enum Item {
    Message(Box<InboundMessage>),
    Skip(SkipKind),
}

/// The parts of a message that depend on the item's kind.
struct Content {
    external_id: ExternalId,
    body_text: String,
    in_reply_to: Option<String>,
    details: Details,
}

/// Decodes one Messenger event into its messages and skipped items, both in
/// payload order. An event with neither is for the caller to account for.
pub(crate) fn decode(
    event: &CloudEvent,
    received_at: DateTime<Utc>,
) -> Result<(Vec<InboundMessage>, Vec<SkipKind>), DecodeError> {
    let webhook: Webhook = serde_json::from_slice(&event.data)
        .map_err(|e| DecodeError::bad_payload(format!("The Messenger payload is not a valid webhook body: {e}.")))?;
    if webhook.object.as_deref() != Some("page") {
        return Err(DecodeError::bad_payload(format!(
            "The Messenger webhook's object is {:?}, not \"page\".",
            webhook.object.unwrap_or_default()
        )));
    }
    let mut messages = Vec::new();
    let mut skipped = Vec::new();
    for (e, entry) in webhook.entry.unwrap_or_default().into_iter().enumerate() {
        for (m, messaging) in entry.messaging.unwrap_or_default().into_iter().enumerate() {
            let position = format!("messaging item {m} of entry {e}");
            match decode_item(&position, messaging, received_at)? {
                Item::Message(message) => messages.push(*message),
                Item::Skip(kind) => skipped.push(kind),
            }
        }
    }
    Ok((messages, skipped))
}

fn decode_item(position: &str, item: Messaging, received_at: DateTime<Utc>) -> Result<Item, DecodeError> {
    if item.message.as_ref().is_some_and(|m| m.is_echo == Some(true)) {
        return Ok(Item::Skip(SkipKind::Echo));
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
        return Ok(Item::Skip(SkipKind::Other));
    }

    let id = |party: Option<Party>| party.and_then(|p| p.id).map(JsonText::into_string).unwrap_or_default();
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
    let attachments = message
        .attachments
        .unwrap_or_default()
        .into_iter()
        .map(|a| Attachment {
            name: None,
            content_type: a.kind,
            size: None,
            url: a.payload.as_ref().and_then(|p| p.get("url")).and_then(Value::as_str).map(str::to_owned),
        })
        .collect();
    Ok(Content {
        external_id,
        body_text: message.text.unwrap_or_default(),
        in_reply_to: message
            .reply_to
            .and_then(|r| r.mid)
            .map(JsonText::into_string)
            .filter(|mid| !mid.trim().is_empty()),
        details: Details {
            attachments,
            keyword: message.quick_reply.and_then(|q| q.payload),
            kind: Some("message".to_owned()),
            ..Details::default()
        },
    })
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
