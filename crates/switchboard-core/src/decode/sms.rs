//! `sms.received`: an inbound SMS webhook body, in one of two provider
//! formats told apart by `datacontenttype`:
//!
//! - `application/json`: Infobip, `{"results":[...]}`, any number of messages;
//! - `application/x-www-form-urlencoded`: Twilio, one message per body.
//!
//! Without a `datacontenttype` the first non-blank byte decides: `{` is
//! Infobip, anything else Twilio. Phone numbers go through
//! [`Address::phone`], so every spelling of a number is one contact.

use super::bounds::MAX_TWILIO_MEDIA;
use super::cloudevent::CloudEvent;
use super::{media_type, DecodeError, Item, Items, JsonText, SkipKind};
use crate::domain::{Address, Attachment, Channel, Details, ExternalId, InboundMessage};
use chrono::{DateTime, Utc};
use serde::Deserialize;

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Decodes one SMS event into its messages, in payload order. An Infobip
/// batch may be empty; the caller accounts for that. A batch whose results
/// are partly unreadable yields the readable ones plus the invalid items.
pub(crate) fn decode(event: &CloudEvent, received_at: DateTime<Utc>) -> Result<Items, DecodeError> {
    let data = event.data.as_slice();
    let is_json = match event.datacontenttype.as_deref().map(media_type) {
        Some(media) if media.eq_ignore_ascii_case(JSON) => true,
        Some(media) if media.eq_ignore_ascii_case(FORM) => false,
        Some(media) => {
            return Err(DecodeError::bad_payload(format!(
                "An SMS payload must be {JSON} (Infobip) or {FORM} (Twilio), not {media:?}."
            )))
        }
        None => data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
    };
    let mut items = Items::default();
    if is_json {
        for item in infobip(data, received_at)? {
            items.push(item);
        }
    } else {
        items.push(Ok(twilio(data, received_at)?));
    }
    Ok(items)
}

/// An Infobip inbound SMS batch; fields Switchboard does not use are ignored.
/// Each result is read on its own, so one malformed result does not hide
/// the others (contract section 5).
#[derive(Deserialize)]
struct InfobipBatch {
    results: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfobipResult {
    message_id: Option<JsonText>,
    from: Option<JsonText>,
    to: Option<JsonText>,
    text: Option<String>,
    clean_text: Option<String>,
    keyword: Option<String>,
    received_at: Option<String>,
    sms_count: Option<JsonText>,
    /// The newer shape: the content as a list of parts instead of `text`.
    message: Option<Vec<InfobipPart>>,
    /// Present on delivery reports, which are not inbound messages.
    status: Option<serde::de::IgnoredAny>,
}

/// One part of an Infobip `message` list: text (`value`) or media (`url`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfobipPart {
    content_type: Option<String>,
    value: Option<String>,
    url: Option<String>,
}

fn infobip(data: &[u8], received_at: DateTime<Utc>) -> Result<Vec<Result<Item, DecodeError>>, DecodeError> {
    let batch: InfobipBatch = serde_json::from_slice(data)
        .map_err(|e| DecodeError::bad_payload(format!("The Infobip payload is not a valid results batch: {e}.")))?;
    super::bounds::check_items("Infobip batch", batch.results.len())?;
    Ok(batch
        .results
        .into_iter()
        .enumerate()
        .map(|(index, result)| {
            let result: InfobipResult = serde_json::from_value(result)
                .map_err(|e| DecodeError::bad_payload(format!("Infobip result {index} cannot be read: {e}.")))?;
            infobip_item(index, result, received_at)
        })
        .collect())
}

fn infobip_item(index: usize, result: InfobipResult, fallback: DateTime<Utc>) -> Result<Item, DecodeError> {
    // A delivery report (a `status`, no sender) says what became of a
    // message we sent; it carries nothing from a customer.
    if result.status.is_some() && result.from.is_none() {
        return Ok(Item::Skip(SkipKind::StatusReport));
    }
    let text = |field: Option<JsonText>| field.map(JsonText::into_string).unwrap_or_default();
    let external_id = ExternalId::parse(&text(result.message_id))
        .ok_or_else(|| DecodeError::bad_payload(format!("Infobip result {index} has no messageId.")))?;
    let contact = Address::phone(&text(result.from))
        .map_err(|e| DecodeError::bad_address(&format!("contact (from of Infobip result {index})"), &e))?;
    let endpoint = Address::phone(&text(result.to))
        .map_err(|e| DecodeError::bad_address(&format!("endpoint (to of Infobip result {index})"), &e))?;
    let received_at = match result.received_at.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => fallback,
        Some(raw) => parse_infobip_time(raw).ok_or_else(|| {
            DecodeError::bad_payload(format!("Infobip result {index} has an unreadable receivedAt {raw:?}."))
        })?,
    };
    let (parts_text, attachments) = infobip_parts(result.message.unwrap_or_default());
    // `text` first; an empty `text` beside a non-empty `cleanText` (Infobip
    // strips the keyword into `cleanText`) must not store a blank message.
    let body_text = [result.text, result.clean_text, Some(parts_text)]
        .into_iter()
        .flatten()
        .find(|t| !t.trim().is_empty())
        .unwrap_or_default();
    Ok(Item::Message(Box::new(InboundMessage {
        body_text,
        details: Details {
            attachments,
            keyword: result.keyword.filter(|k| !k.trim().is_empty()),
            sms_count: result.sms_count.and_then(|n| n.into_string().parse().ok()),
            ..Details::default()
        },
        ..sms_message(endpoint, contact, external_id, received_at)
    })))
}

/// The newer Infobip content list: text parts joined by blank lines, every
/// part with a `url` kept as an attachment.
fn infobip_parts(parts: Vec<InfobipPart>) -> (String, Vec<Attachment>) {
    let mut texts = Vec::new();
    let mut attachments = Vec::new();
    for part in parts {
        match (part.url, part.value) {
            (Some(url), value) => attachments.push(Attachment {
                name: None,
                content_type: part.content_type,
                size: None,
                url: Some(url),
                title: value,
                coordinates: None,
            }),
            (None, Some(value)) => texts.push(value),
            (None, None) => {}
        }
    }
    (texts.join("\n\n"), attachments)
}

/// Infobip writes `2019-11-09T16:00:00.000+0000` (an offset without a
/// colon, which RFC 3339 does not allow); RFC 3339 is accepted as well.
fn parse_infobip_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(raw))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A Twilio inbound message webhook: `MessageSid`, `From`, `To`, `Body`,
/// `NumSegments`, `NumMedia` and `MediaUrlN`/`MediaContentTypeN`.
fn twilio(data: &[u8], received_at: DateTime<Utc>) -> Result<Item, DecodeError> {
    let body = std::str::from_utf8(data)
        .map_err(|e| DecodeError::bad_payload(format!("The Twilio form body is not UTF-8: {e}.")))?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(body)
        .map_err(|e| DecodeError::bad_payload(format!("The Twilio form body cannot be read: {e}.")))?;
    // Twilio sends each field once; where a field repeats, the first counts.
    let field = |name: &str| fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    // A status callback (`MessageStatus` without a sender) reports on a
    // message we sent; it carries nothing from a customer.
    if field("MessageStatus").is_some() && field("From").is_none() {
        return Ok(Item::Skip(SkipKind::StatusReport));
    }

    let external_id = ExternalId::parse(field("MessageSid").unwrap_or_default())
        .ok_or_else(|| DecodeError::bad_payload("The Twilio form body has no MessageSid."))?;
    let contact = Address::phone(field("From").unwrap_or_default())
        .map_err(|e| DecodeError::bad_address("contact (From)", &e))?;
    let endpoint =
        Address::phone(field("To").unwrap_or_default()).map_err(|e| DecodeError::bad_address("endpoint (To)", &e))?;
    // Each medium is a search of the fields, so a lying `NumMedia` must
    // not set the length of this loop: Twilio sends at most ten.
    let num_media = field("NumMedia").and_then(|n| n.trim().parse::<usize>().ok()).unwrap_or(0);
    let media_count = num_media.min(fields.len()).min(MAX_TWILIO_MEDIA);
    let attachments = (0..media_count)
        .filter_map(|i| {
            let url = field(&format!("MediaUrl{i}")).map(str::to_owned);
            let content_type = field(&format!("MediaContentType{i}")).map(str::to_owned);
            (url.is_some() || content_type.is_some()).then_some(Attachment {
                name: None,
                content_type,
                size: None,
                url,
                title: None,
                coordinates: None,
            })
        })
        .collect();
    Ok(Item::Message(Box::new(InboundMessage {
        body_text: field("Body").unwrap_or_default().to_owned(),
        details: Details {
            attachments,
            sms_count: field("NumSegments").and_then(|n| n.trim().parse().ok()),
            truncated: if num_media > MAX_TWILIO_MEDIA { vec!["attachments".to_owned()] } else { Vec::new() },
            ..Details::default()
        },
        ..sms_message(endpoint, contact, external_id, received_at)
    })))
}

/// The fields every SMS shares: no subject, no HTML, no threading headers,
/// never automatic, no sender date.
fn sms_message(
    endpoint: Address,
    contact: Address,
    external_id: ExternalId,
    received_at: DateTime<Utc>,
) -> InboundMessage {
    InboundMessage {
        channel: Channel::Sms,
        endpoint,
        contact,
        external_id,
        subject: None,
        body_text: String::new(),
        body_html: None,
        in_reply_to: None,
        references: Vec::new(),
        auto_generated: false,
        sent_at: None,
        received_at,
        raw: None,
        details: Details::default(),
    }
}

#[cfg(test)]
mod tests;
