//! `email.received`: a raw RFC 5322 message, exactly as the inbox's MTA
//! accepted it, addressed to the inbox named by the `recipient` extension.
//!
//! Parsing is mail-parser's; this module picks out what placement and the
//! agent desktop need and keeps the raw bytes so nothing the customer sent is
//! lost. It decides one thing of its own: whether the mail was sent by a
//! machine (RFC 3834 and friends), which stops it reopening conversations.
//!
//! What it takes from the mail is bounded (`super::bounds`): the newest
//! `References`, a few `In-Reply-To` ids, the subject's and the sender
//! name's length, the recipients listed, and the MIME parts read for the
//! body and attachments (`parts`). Cuts are listed in `details.truncated`;
//! `raw` keeps the message whole.

use super::bounds::{truncate, MAX_IN_REPLY_TO, MAX_NAME_BYTES, MAX_RECIPIENTS, MAX_REFERENCES, MAX_SUBJECT_BYTES};
use super::cloudevent::CloudEvent;
use super::msgid::parse_ids;
use super::{sha256_hex, DecodeError, DlqReason};
use crate::domain::{Address, Attachment, Channel, Details, ExternalId, InboundMessage};
use chrono::{DateTime, Utc};
use mail_parser::{Address as MailAddress, ContentType, Message, MessageParser, MimeHeaders};
use parts::ReadableParts;

/// Decodes one email event into its message.
pub(crate) fn decode(event: &CloudEvent, received_at: DateTime<Utc>) -> Result<InboundMessage, DecodeError> {
    let recipient = event.recipient.as_deref().filter(|r| !r.trim().is_empty()).ok_or_else(|| {
        DecodeError::new(
            DlqReason::MissingRecipient,
            format!("Email event {:?} has no recipient extension naming the inbox that accepted it.", event.id),
        )
    })?;
    let endpoint = Address::email(smtp_path_address(recipient))
        .map_err(|e| DecodeError::bad_address("endpoint (recipient)", &e))?;
    let raw = event.data.as_slice();
    let message = MessageParser::default()
        .parse(raw)
        .filter(has_header_fields)
        .ok_or_else(|| DecodeError::bad_payload("The email payload has no RFC 5322 header fields."))?;

    let from = first_from(&message);
    let contact = Address::email(from.and_then(|a| a.address()).unwrap_or_default())
        .map_err(|e| DecodeError::bad_address("contact (first From mailbox)", &e))?;
    let mut truncated = Vec::new();
    let mut bounded = |text: Option<&str>, max: usize, field: &str| {
        text.map(|text| {
            let mut text = text.to_owned();
            if truncate(&mut text, max) {
                truncated.push(field.to_owned());
            }
            text
        })
    };
    let sender_name =
        bounded(from.and_then(|a| a.name()).map(str::trim).filter(|n| !n.is_empty()), MAX_NAME_BYTES, "sender_name");
    let subject = bounded(message.subject(), MAX_SUBJECT_BYTES, "subject");
    let (in_reply_to, references) = threading_ids(&message, &mut truncated);
    let to = addresses(message.all_to(), "to", &mut truncated);
    let cc = addresses(message.all_cc(), "cc", &mut truncated);
    let reply_to = addresses(message.reply_to().into_iter(), "reply_to", &mut truncated);
    let parts = ReadableParts::of(&message);
    truncated.extend(parts.cuts().into_iter().map(str::to_owned));
    Ok(InboundMessage {
        channel: Channel::Email,
        endpoint,
        contact,
        external_id: external_id(&message, raw),
        subject,
        body_text: parts.body_text(&message),
        body_html: parts.html_body(&message),
        in_reply_to,
        references,
        auto_generated: is_auto_generated(&message),
        sent_at: message.date().filter(|d| d.is_valid()).and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0)),
        received_at,
        raw: Some(raw.to_vec()),
        details: Details {
            to,
            cc,
            reply_to,
            sender_name,
            attachments: parts.attachments(&message).map(attachment).collect(),
            truncated,
            ..Details::default()
        },
    })
}

/// mail-parser reads any bytes as some message, taking a first line of prose
/// for a header. A payload without one well-formed header field (RFC 5322
/// field names are printable ASCII without spaces or colons) is not an email.
fn has_header_fields(message: &Message<'_>) -> bool {
    message.headers().iter().any(|header| {
        let name = header.name();
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
    })
}

/// The `recipient` extension may be written as an SMTP path
/// (`<support@acme.example>`, as in `RCPT TO`); the address inside is the
/// same endpoint.
fn smtp_path_address(recipient: &str) -> &str {
    let trimmed = recipient.trim();
    trimmed.strip_prefix('<').and_then(|r| r.strip_suffix('>')).unwrap_or(trimmed)
}

/// The first `From` header's first mailbox. mail-parser answers with the
/// last of repeated headers; MTAs and mail clients show the first.
fn first_from<'a>(message: &'a Message<'a>) -> Option<&'a mail_parser::Addr<'a>> {
    message
        .headers()
        .iter()
        .find(|header| header.name().eq_ignore_ascii_case("From"))
        .and_then(|header| header.value().as_address())
        .and_then(MailAddress::first)
}

/// The first `Message-ID`'s id without angle brackets; a message without a
/// readable one is named by its content, so a redelivered copy still
/// collides with the first (R0).
fn external_id(message: &Message<'_>, raw: &[u8]) -> ExternalId {
    raw_values(message, "Message-ID")
        .next()
        .and_then(|value| parse_ids(&value).into_iter().next())
        .and_then(|id| ExternalId::parse(&id))
        .unwrap_or_else(|| {
            let hashed = format!("sha256:{}", sha256_hex(raw));
            // Cannot panic: the id starts with `sha256:`, so it is never blank.
            ExternalId::parse(&hashed).expect("a sha256: id is never blank")
        })
}

/// `In-Reply-To`'s first id, and `References` in header order followed by
/// `In-Reply-To`'s other ids. Placement tries `in_reply_to`, then
/// `references` newest (last) first, so every `In-Reply-To` id is tried,
/// in order, before the `References` proper; an id found in both moves to
/// the end rather than appearing twice.
///
/// Bounded: the first [`MAX_IN_REPLY_TO`] `In-Reply-To` ids, and of the
/// whole list the newest (last) [`MAX_REFERENCES`]; each id is a lock and a
/// lookup, and a 10 MB header names 250,000. A cut is added to `truncated`.
fn threading_ids(message: &Message<'_>, truncated: &mut Vec<String>) -> (Option<ExternalId>, Vec<ExternalId>) {
    let mut in_reply_to: Vec<String> = raw_values(message, "In-Reply-To").flat_map(|v| parse_ids(&v)).collect();
    if in_reply_to.len() > MAX_IN_REPLY_TO {
        in_reply_to.truncate(MAX_IN_REPLY_TO);
        truncated.push("in_reply_to".to_owned());
    }
    let mut references: Vec<String> = raw_values(message, "References").flat_map(|v| parse_ids(&v)).collect();
    let newest =
        |references: &mut Vec<String>| references.drain(..references.len().saturating_sub(MAX_REFERENCES)).count() > 0;
    // Cut before merging, so the merge below works on at most 100 ids.
    let mut cut = newest(&mut references);
    let mut ids = in_reply_to.into_iter();
    let first = ids.next();
    // Reversed, so that the second In-Reply-To id ends up last (tried first).
    let others: Vec<String> = ids.filter(|id| Some(id) != first.as_ref()).collect();
    for id in others.into_iter().rev() {
        references.retain(|r| *r != id);
        references.push(id);
    }
    cut |= newest(&mut references);
    if cut {
        truncated.push("references".to_owned());
    }
    let id = |raw: String| ExternalId::parse(&raw);
    (first.and_then(id), references.into_iter().filter_map(id).collect())
}

/// The raw value of each top-level header named `name` (any case), in
/// header order, read from the source: mail-parser parses unknown and
/// malformed headers differently by name, and keeps only the last of
/// repeated ones.
fn raw_values<'m>(message: &'m Message<'_>, name: &'m str) -> impl Iterator<Item = String> + 'm {
    message.headers().iter().filter(move |header| header.name().eq_ignore_ascii_case(name)).map(|header| {
        let range = header.offset_start() as usize..header.offset_end() as usize;
        String::from_utf8_lossy(message.raw_message.get(range).unwrap_or_default()).into_owned()
    })
}

/// The mailboxes of address headers, lowercased, in header order: the
/// first [`MAX_RECIPIENTS`], a cut noted in `truncated` as `field`.
fn addresses<'a, 'x: 'a>(
    headers: impl Iterator<Item = &'a MailAddress<'x>>,
    field: &str,
    truncated: &mut Vec<String>,
) -> Vec<String> {
    let mut all = headers
        .flat_map(|header| header.iter())
        .filter_map(|addr| addr.address())
        .map(|address| address.trim().to_lowercase())
        .filter(|address| !address.is_empty());
    let kept: Vec<String> = all.by_ref().take(MAX_RECIPIENTS).collect();
    if all.next().is_some() {
        truncated.push(field.to_owned());
    }
    kept
}

fn attachment(part: &mail_parser::MessagePart<'_>) -> Attachment {
    Attachment {
        name: part.attachment_name().map(str::to_owned),
        content_type: part.content_type().map(type_and_subtype),
        size: u64::try_from(part.contents().len()).ok(),
        url: None,
        title: None,
        coordinates: None,
    }
}

/// `type/subtype`, lowercased, without parameters.
fn type_and_subtype(content_type: &ContentType<'_>) -> String {
    match content_type.subtype() {
        Some(subtype) => format!("{}/{}", content_type.ctype(), subtype).to_ascii_lowercase(),
        None => content_type.ctype().to_ascii_lowercase(),
    }
}

/// Mail sent by a machine (contract R6): `Auto-Submitted` other than `no`
/// (RFC 3834); `Precedence: bulk | junk | list`; `X-Autoreply` or
/// `X-Autorespond` (older vacation responders); a delivery status report; a
/// read receipt (RFC 8098); a bounce that is not a DSN, told by its sender:
/// the null reverse path `Return-Path: <>`, or `MAILER-DAEMON` or
/// `postmaster` as the From mailbox.
fn is_auto_generated(message: &Message<'_>) -> bool {
    let mut auto_submitted = header_tokens(message, "Auto-Submitted");
    let mut precedence = header_tokens(message, "Precedence");
    auto_submitted.any(|token| token != "no")
        || precedence.any(|token| matches!(token.as_str(), "bulk" | "junk" | "list"))
        || header_tokens(message, "X-Autoreply").next().is_some()
        || header_tokens(message, "X-Autorespond").next().is_some()
        || is_report(message, "delivery-status")
        || is_report(message, "disposition-notification")
        || is_from_the_mail_system(message)
}

/// The null reverse path or a mail-system mailbox as the sender. Only the
/// first `Return-Path` counts: it is the one the receiving MTA added.
fn is_from_the_mail_system(message: &Message<'_>) -> bool {
    let null_path = header_tokens(message, "Return-Path")
        .next()
        .is_some_and(|path| path.chars().filter(|c| !c.is_whitespace()).collect::<String>() == "<>");
    let system_mailbox = first_from(message)
        .and_then(|a| a.address())
        .and_then(|address| address.rsplit_once('@'))
        .is_some_and(|(local, _)| {
            let local = local.trim();
            local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
        });
    null_path || system_mailbox
}

/// The first token of each top-level header named `name` (any case),
/// lowercased, without parameters or comments: `Auto-Submitted:
/// Auto-Replied; owner=x (vacation)` gives `auto-replied`.
fn header_tokens<'m>(message: &'m Message<'_>, name: &'m str) -> impl Iterator<Item = String> + 'm {
    raw_values(message, name).map(|raw| raw.split([';', '(']).next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// A report of `kind`: `delivery-status` (a bounce or delay notice, RFC
/// 3464) or `disposition-notification` (a read receipt, RFC 8098). Either a
/// `multipart/report; report-type=KIND` message, or any message carrying a
/// `message/KIND` part.
fn is_report(message: &Message<'_>, kind: &str) -> bool {
    let report = message.content_type().is_some_and(|ct| {
        is_media_type(ct, "multipart", "report")
            && ct.attribute("report-type").is_some_and(|t| t.trim().eq_ignore_ascii_case(kind))
    });
    report || message.parts.iter().any(|part| part.content_type().is_some_and(|ct| is_media_type(ct, "message", kind)))
}

fn is_media_type(content_type: &ContentType<'_>, ctype: &str, subtype: &str) -> bool {
    content_type.ctype().eq_ignore_ascii_case(ctype)
        && content_type.subtype().is_some_and(|s| s.eq_ignore_ascii_case(subtype))
}

mod parts;

#[cfg(test)]
mod bounds_tests;
#[cfg(test)]
mod id_tests;
#[cfg(test)]
mod nul_tests;
#[cfg(test)]
mod tests;
