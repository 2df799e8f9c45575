//! Postgres refuses U+0000 in `text` and `jsonb`, so a message carrying one
//! (a stray NUL in a body, a UTF-16 body labelled `us-ascii`, `=00` in an
//! encoded subject or attachment name) would be dead-lettered whole as
//! `rejected_by_store` and never reach an agent. The raw source (email
//! `raw`, a `bytea`) keeps every byte, so nothing is lost by cleaning the
//! decoded fields here instead.
//!
//! Text loses its NUL characters: they carry no content, and dropping them
//! turns a UTF-16 body read as ASCII back into readable text. Identifiers
//! (`external_id`, `in_reply_to`, `references`) get U+FFFD instead, so two
//! ids that differ only by a NUL stay two ids and a reply still matches the
//! id of its parent, cleaned the same way. Every field that changed is named
//! in `details.nul_removed`, so an agent knows to look at the raw source.

use super::DecodeError;
use crate::domain::{Address, ExternalId, InboundMessage};

const NUL: char = '\0';

/// Removes U+0000 from every text field of `message`, noting each field it
/// changed. Fails only if an address consisted of nothing but NULs.
pub(crate) fn remove_nul(mut message: InboundMessage) -> Result<InboundMessage, DecodeError> {
    let mut changed: Vec<&'static str> = Vec::new();
    let mut strip = |field: &'static str, text: &mut String| {
        if text.contains(NUL) {
            text.retain(|c| c != NUL);
            changed.push(field);
        }
    };
    let m = &mut message;
    if let Some(subject) = m.subject.as_mut() {
        strip("subject", subject);
    }
    strip("body_text", &mut m.body_text);
    if let Some(html) = m.body_html.as_mut() {
        strip("body_html", html);
    }
    let d = &mut m.details;
    for (field, list) in [("to", &mut d.to), ("cc", &mut d.cc), ("reply_to", &mut d.reply_to)] {
        for text in list.iter_mut() {
            strip(field, text);
        }
    }
    for (field, text) in
        [("sender_name", d.sender_name.as_mut()), ("keyword", d.keyword.as_mut()), ("kind", d.kind.as_mut())]
    {
        if let Some(text) = text {
            strip(field, text);
        }
    }
    for attachment in &mut d.attachments {
        for (field, text) in [
            ("attachment name", attachment.name.as_mut()),
            ("attachment content type", attachment.content_type.as_mut()),
            ("attachment url", attachment.url.as_mut()),
            ("attachment title", attachment.title.as_mut()),
        ] {
            if let Some(text) = text {
                strip(field, text);
            }
        }
    }

    let mut replace = |field: &'static str, id: &mut ExternalId| {
        if id.as_str().contains(NUL) {
            // Always Some: the id was non-blank and U+FFFD is not blank.
            if let Some(replaced) = ExternalId::parse(&id.as_str().replace(NUL, "\u{FFFD}")) {
                *id = replaced;
            }
            changed.push(field);
        }
    };
    if let Some(id) = m.in_reply_to.as_mut() {
        replace("in_reply_to", id);
    }
    for id in &mut m.references {
        replace("references", id);
    }
    replace("external_id", &mut m.external_id);
    for (role, address) in [("endpoint", &mut m.endpoint), ("contact", &mut m.contact)] {
        if address.as_str().contains(NUL) {
            let cleaned = address.as_str().replace(NUL, "");
            *address =
                Address::for_channel(address.channel(), &cleaned).map_err(|e| DecodeError::bad_address(role, &e))?;
            changed.push(role);
        }
    }

    for field in changed {
        if !m.details.nul_removed.iter().any(|f| f == field) {
            m.details.nul_removed.push(field.to_owned());
        }
    }
    Ok(message)
}
