//! The MIME parts an email's body and attachments are read from: the first
//! [`MAX_MIME_PARTS`] parts (multiparts included, in the order they
//! appear), each inside at most [`MAX_MIME_DEPTH`] multiparts. mail-parser
//! reads any nesting and any number of parts (its multipart parser keeps a
//! stack, not recursion); what it found beyond these bounds stays in `raw`
//! and is not described, so one message's details and the work done on it
//! stay small whatever the sender built.

use crate::decode::bounds::{MAX_MIME_DEPTH, MAX_MIME_PARTS};
use mail_parser::{Message, MessagePart, PartType};

/// Which parts of one message may be read, by part index.
pub(super) struct ReadableParts {
    readable: Vec<bool>,
    too_deep: bool,
    too_many: bool,
}

impl ReadableParts {
    /// Walks the part tree from the top part (depth 0); a part inside a
    /// multipart is one deeper than it.
    pub(super) fn of(message: &Message<'_>) -> ReadableParts {
        let parts = &message.parts;
        let mut readable = vec![false; parts.len().min(MAX_MIME_PARTS)];
        let mut too_deep = false;
        let mut stack = vec![(0usize, 0usize)];
        while let Some((index, depth)) = stack.pop() {
            if depth > MAX_MIME_DEPTH {
                too_deep = true;
                continue;
            }
            // Past the parts bound (children always follow their parent),
            // or already seen in a malformed tree.
            let Some(slot) = readable.get_mut(index).filter(|seen| !**seen) else { continue };
            *slot = true;
            if let Some(PartType::Multipart(children)) = parts.get(index).map(|p| &p.body) {
                stack.extend(children.iter().map(|&child| (child as usize, depth + 1)));
            }
        }
        ReadableParts { readable, too_deep, too_many: parts.len() > MAX_MIME_PARTS }
    }

    fn readable(&self, index: u32) -> bool {
        self.readable.get(index as usize).copied().unwrap_or(false)
    }

    /// The bounds this message passed, as `details.truncated` names them.
    pub(super) fn cuts(&self) -> Vec<&'static str> {
        [(self.too_deep, "mime_depth"), (self.too_many, "mime_parts")]
            .into_iter()
            .filter_map(|(cut, name)| cut.then_some(name))
            .collect()
    }

    /// The first readable text body (HTML turned into text when the message
    /// has no plain text), as mail-parser's `body_text` chooses it.
    pub(super) fn body_text(&self, message: &Message<'_>) -> String {
        let position = message.text_body.iter().position(|&index| self.readable(index));
        position.and_then(|pos| message.body_text(pos)).map(|text| text.into_owned()).unwrap_or_default()
    }

    /// The first readable HTML body, only when the message has a real
    /// `text/html` part: mail-parser would otherwise synthesize HTML from
    /// the plain text.
    pub(super) fn html_body(&self, message: &Message<'_>) -> Option<String> {
        message.html_body.iter().filter(|&&index| self.readable(index)).find_map(|&index| {
            match message.parts.get(index as usize).map(|p| &p.body) {
                Some(PartType::Html(html)) => Some(html.to_string()),
                _ => None,
            }
        })
    }

    /// The readable attachments, in order.
    pub(super) fn attachments<'m, 'x>(&'m self, message: &'m Message<'x>) -> impl Iterator<Item = &'m MessagePart<'x>> {
        message
            .attachments
            .iter()
            .filter(|&&index| self.readable(index))
            .filter_map(|&index| message.parts.get(index as usize))
    }
}
