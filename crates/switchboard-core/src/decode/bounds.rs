//! The bounds on everything a sender controls (contract section 5, bounded
//! inputs): one place that names each number and says why, and the checks
//! that apply to every channel. A record whose envelope or item count is
//! past its bound is dead-lettered `too_large` with a detail naming the
//! bound; text past its bound is cut where the decoder builds the message
//! (the email's `raw` column always keeps the whole message) and the cut is
//! listed in `details.truncated`. `docs/reliability.md` ("Bounded inputs")
//! has the table of bounds and the tests of each.
//!
//! Why bounds at all: a 10 MB record can name 250,000 message ids or carry
//! 5,000 webhook keys, and each id became an advisory lock and each key a
//! metric series. The numbers are far above what real senders produce, so
//! only hostile or broken input reaches them.

use super::{CloudEvent, DecodeError, Decoded, DlqReason};
use crate::domain::{Details, InboundMessage};
use crate::record::SourceRecord;

/// The newest `References` ids kept for threading, the `references` column
/// and the advisory locks (one lock per id the batch does not find stored).
/// RFC 5322 lists them oldest first, so the last ones are kept; a thread
/// 100 messages deep still finds its parent, and `raw` keeps them all.
pub const MAX_REFERENCES: usize = 100;
/// `In-Reply-To` ids read. The first is the parent placement tries first;
/// the others (a reply to several messages at once) are tried next. RFC
/// 5322 expects one; a client replying to more than a few is not a person.
pub(crate) const MAX_IN_REPLY_TO: usize = 10;
/// The longest message id kept, in bytes: RFC 5322's line limit. A longer
/// `References` or `In-Reply-To` id is left out (it can name no stored
/// message), a longer `Message-ID` counts as absent (the id is then the
/// content hash), and a longer SMS or Messenger id makes its item
/// `too_large`: ids are unique-index keys, which Postgres caps near 2.7 kB.
pub(crate) const MAX_ID_BYTES: usize = 998;
/// The longest normalized address (contact or endpoint), in bytes: RFC
/// 5321's limit on a mailbox in a path. Addresses are index and lock keys;
/// a longer one is `too_large`, it can be no one's real address.
pub(crate) const MAX_ADDRESS_BYTES: usize = 254;
/// The longest stored subject, in bytes; longer ones are cut (at a
/// character boundary). Agents read subjects on one line.
pub(crate) const MAX_SUBJECT_BYTES: usize = 1024;
/// The longest stored sender display name, in bytes; it becomes the
/// default topic `Talking with <name>`.
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// `To`, `Cc` and `Reply-To` addresses kept in the details, each.
pub(crate) const MAX_RECIPIENTS: usize = 100;
/// MIME nesting read for the body and attachments: parts inside more than
/// this many multiparts are left in `raw` only. Postfix's default
/// `mime_nesting_limit`, so mail from a stock MTA never reaches it.
pub(crate) const MAX_MIME_DEPTH: usize = 100;
/// MIME parts read for the body and attachments, in the order they appear;
/// later parts are left in `raw` only.
pub(crate) const MAX_MIME_PARTS: usize = 1000;
/// Items per record: results of an Infobip batch, or the events of a
/// Messenger webhook (messaging items, standby items and other entries
/// together). Both providers send at most 1,000 per call; a record with more
/// is dead-lettered whole, nothing of it placed.
pub const MAX_ITEMS: usize = 1000;
/// Media described per Twilio message: Twilio sends at most 10 (its MMS
/// limit). Each is looked up by name among the form's fields, so a lying
/// `NumMedia` in a form of a million fields would otherwise take hours;
/// later media are left out (`truncated: attachments`).
pub(crate) const MAX_TWILIO_MEDIA: usize = 10;
/// Attachments described per message, every channel: as many as an
/// email's MIME parts allow (Twilio's own 10 applies first). A Messenger or
/// Infobip message carries a handful; more are left out (`truncated:
/// attachments`).
pub(crate) const MAX_ATTACHMENTS: usize = MAX_MIME_PARTS;
/// The longest other text a sender puts in `details`, in bytes: each
/// attachment's name, content type, url and title, the keyword or postback
/// payload, each `To`, `Cc` and `Reply-To` entry. Messenger caps a postback
/// payload at 1,000 characters (4,000 bytes at most); providers' file urls
/// are a few hundred bytes. Longer text is cut at a character boundary.
pub(crate) const MAX_DETAIL_TEXT_BYTES: usize = 4096;
/// Kafka headers per record. CloudEvents needs about eight; tracing adds
/// a few.
pub(crate) const MAX_HEADERS: usize = 64;
/// The headers' total size (names and values), in bytes.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The longest value of a CloudEvents attribute (`ce_*` headers and
/// `content-type` in binary mode, the attributes of a structured event):
/// ids, sources, types and inboxes are short, and they reach logs and
/// dead-letter details.
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;
/// The longest detail of one decode error; details quote input (a type, a
/// time, an address) and travel as a Kafka header and a log field.
pub(crate) const MAX_DETAIL_BYTES: usize = 1024;
/// The longest `dlq_detail` of a record with invalid items, which lists
/// them: the first ones are named, then how many more there are.
pub(crate) const MAX_RECORD_DETAIL_BYTES: usize = 8 * 1024;

// The build fails if the longest detail of a record stops fitting whole in
// a dead letter's detail, with 2 KiB left for the store's words beside it.
const _: () = assert!(MAX_RECORD_DETAIL_BYTES + 2 * 1024 <= crate::dead_letter::MAX_DETAIL_BYTES);

/// A record past its bound, whole: `what` says which input, `bound` the
/// number and its unit.
pub(crate) fn too_large(what: impl std::fmt::Display, bound: impl std::fmt::Display) -> DecodeError {
    DecodeError::new(DlqReason::TooLarge, format!("{what}, more than the bound of {bound}."))
}

/// Cuts `text` to at most `max` bytes at a character boundary; says
/// whether it cut.
pub(crate) fn truncate(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

/// `text` cut to `max` bytes, with `…` when it was cut.
pub fn capped(mut text: String, max: usize) -> String {
    if truncate(&mut text, max.saturating_sub('…'.len_utf8())) {
        text.push('…');
    }
    text
}

/// Checks the record's Kafka headers before anything reads them: their
/// number, their total size, and the size of every CloudEvents attribute
/// header (`ce_*`, `content-type`), read or not.
pub(crate) fn check_headers(record: &SourceRecord) -> Result<(), DecodeError> {
    let count = record.headers.len();
    if count > MAX_HEADERS {
        return Err(too_large(format!("The record has {count} headers"), format!("{MAX_HEADERS} headers")));
    }
    let size: usize = record.headers.iter().map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len)).sum();
    if size > MAX_HEADER_BYTES {
        return Err(too_large(format!("The record's headers are {size} bytes"), format!("{MAX_HEADER_BYTES} bytes")));
    }
    for h in &record.headers {
        let attribute =
            h.key.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("ce_")) || h.key.eq_ignore_ascii_case("content-type");
        let len = h.value.as_ref().map_or(0, Vec::len);
        if attribute && len > MAX_ATTRIBUTE_BYTES {
            return Err(attribute_too_large(&capped(h.key.clone(), 64), len));
        }
    }
    Ok(())
}

/// Checks the attributes of an event read in either mode.
pub(crate) fn check_attributes(event: CloudEvent) -> Result<CloudEvent, DecodeError> {
    let attributes = [
        ("id", Some(&event.id)),
        ("source", Some(&event.source)),
        ("type", Some(&event.event_type)),
        ("datacontenttype", event.datacontenttype.as_ref()),
        ("recipient", event.recipient.as_ref()),
    ];
    for (name, value) in attributes {
        let len = value.map_or(0, String::len);
        if len > MAX_ATTRIBUTE_BYTES {
            return Err(attribute_too_large(name, len));
        }
    }
    Ok(event)
}

fn attribute_too_large(name: &str, len: usize) -> DecodeError {
    too_large(
        format!("The CloudEvents attribute {name} is {len} bytes"),
        format!("{MAX_ATTRIBUTE_BYTES} bytes per attribute"),
    )
}

/// Fails a multi-message payload that carries more than [`MAX_ITEMS`]
/// items; `what` names the payload and its list.
pub(crate) fn check_items(what: &str, count: usize) -> Result<(), DecodeError> {
    if count > MAX_ITEMS {
        return Err(DecodeError::new(
            DlqReason::TooLarge,
            format!(
                "The {what} carries {count} items, more than the bound of {MAX_ITEMS} items per record; \
                 none of them was placed."
            ),
        ));
    }
    Ok(())
}

/// Checks what every channel's messages share: ids and addresses within
/// their bounds. A reply or reference id past [`MAX_ID_BYTES`] is dropped
/// (it names no stored message); an external id or address past its bound makes the
/// message `too_large`: a single message fails the record, one of a batch
/// becomes an invalid item.
pub(crate) fn within_bounds(decoded: Decoded) -> Result<Decoded, DecodeError> {
    let single = decoded.messages.len() == 1 && decoded.skipped.is_empty() && decoded.invalid.is_empty();
    let mut invalid = decoded.invalid;
    let mut messages = Vec::with_capacity(decoded.messages.len());
    for mut message in decoded.messages {
        cut_details(&mut message.details);
        // Checked again after `nul`, which writes U+FFFD (3 bytes) for each
        // NUL in an id.
        message.in_reply_to = message.in_reply_to.filter(|id| id.as_str().len() <= MAX_ID_BYTES);
        message.references.retain(|id| id.as_str().len() <= MAX_ID_BYTES);
        match check_message(&message) {
            Ok(()) => messages.push(message),
            Err(e) if single => return Err(e),
            Err(e) => invalid.push(e),
        }
    }
    Ok(Decoded::batch(messages, decoded.skipped, invalid))
}

/// Cuts what a sender put in `details` to its bounds, for every channel
/// (the decoders cut the fields they own, such as an email's subject and
/// recipient counts, where they build them); each field cut is named in
/// `details.truncated`, once.
fn cut_details(details: &mut Details) {
    let mut cut = Vec::new();
    for (field, list) in [("to", &mut details.to), ("cc", &mut details.cc), ("reply_to", &mut details.reply_to)] {
        if list.iter_mut().fold(false, |any, text| truncate(text, MAX_DETAIL_TEXT_BYTES) | any) {
            cut.push(field);
        }
    }
    if details.sender_name.as_mut().is_some_and(|name| truncate(name, MAX_NAME_BYTES)) {
        cut.push("sender_name");
    }
    for (field, text) in [("keyword", details.keyword.as_mut()), ("kind", details.kind.as_mut())] {
        if text.is_some_and(|text| truncate(text, MAX_DETAIL_TEXT_BYTES)) {
            cut.push(field);
        }
    }
    let mut attachments_cut = details.attachments.len() > MAX_ATTACHMENTS;
    details.attachments.truncate(MAX_ATTACHMENTS);
    for attachment in &mut details.attachments {
        for text in [&mut attachment.name, &mut attachment.content_type, &mut attachment.url, &mut attachment.title]
            .into_iter()
            .flatten()
        {
            attachments_cut |= truncate(text, MAX_DETAIL_TEXT_BYTES);
        }
    }
    if attachments_cut {
        cut.push("attachments");
    }
    for field in cut {
        if !details.truncated.iter().any(|f| f == field) {
            details.truncated.push(field.to_owned());
        }
    }
}

fn check_message(message: &InboundMessage) -> Result<(), DecodeError> {
    // Every decoder builds both addresses as its channel's kind; the tests
    // decode every fixture and generated record through here.
    debug_assert!(
        message.endpoint.channel() == message.channel && message.contact.channel() == message.channel,
        "a {} message with addresses {:?} and {:?}",
        message.channel,
        message.endpoint,
        message.contact
    );
    let id = message.external_id.as_str().len();
    if id > MAX_ID_BYTES {
        return Err(too_large(
            format!("The {} message's id is {id} bytes", message.channel),
            format!("{MAX_ID_BYTES} bytes"),
        ));
    }
    for (role, address) in [("endpoint", &message.endpoint), ("contact", &message.contact)] {
        let len = address.as_str().len();
        if len > MAX_ADDRESS_BYTES {
            return Err(too_large(
                format!("The {} message's {role} address is {len} bytes", message.channel),
                format!("{MAX_ADDRESS_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
