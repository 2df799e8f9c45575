//! `switchboard events`: the events topic for a person, one line per event.

use super::CloudEvent;

/// One event as a line: time, type, conversation, message, and what changed.
pub fn line(event: &CloudEvent) -> String {
    let d = &event.data;
    let mut out =
        format!("{} {:<31} conversation {} message {}", event.time, event.kind, d.conversation_id, d.message_id);
    if let Some(rule) = &d.rule {
        out.push_str(&format!(" rule {rule}"));
    }
    match (&d.status_before, &d.status_after) {
        (Some(before), Some(after)) if before != after => out.push_str(&format!(" {before} -> {after}")),
        (None, Some(after)) => out.push_str(&format!(" -> {after}")),
        _ => {}
    }
    if let Some(related) = d.related_conversation_id {
        let how = d.link_kind.as_deref().unwrap_or("with");
        out.push_str(&format!(" {how} {related}"));
    }
    out.push_str(&format!(" ({} {}/{})", d.channel, d.endpoint, d.contact));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventData, EventType, SourceRecord};
    use uuid::Uuid;

    #[test]
    fn a_line_says_what_happened_to_which_conversation() {
        let data = EventData {
            conversation_id: Uuid::from_u128(1),
            message_id: Uuid::from_u128(2),
            channel: "email".into(),
            endpoint: "support@acme.example".into(),
            contact: "ana@example.com".into(),
            status_before: Some("solved".into()),
            status_after: Some("open".into()),
            rule: None,
            related_conversation_id: None,
            link_kind: None,
            source: SourceRecord { topic: "inbound.email".into(), partition: 0, offset: 7 },
        };
        let e = CloudEvent::new(EventType::ConversationReopened, Uuid::from_u128(1), "2026-12-07T00:00:00Z", data);
        let l = line(&e);
        assert!(l.starts_with("2026-12-07T00:00:00Z conversation.reopened"), "{l}");
        assert!(l.contains("solved -> open (email support@acme.example/ana@example.com)"), "{l}");
    }
}
