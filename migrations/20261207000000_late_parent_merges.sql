-- R8, the late parent (contract version 2): Switchboard merges a
-- conversation it started for replies that came before their parent into
-- the parent's conversation, and audits each merge with an event of kind
-- `merged` (the merged conversation, the message that caused it, and the
-- conversation it was merged into in `related_conversation_id`).
ALTER TABLE conversation_events DROP CONSTRAINT conversation_events_kind_check;
ALTER TABLE conversation_events ADD CONSTRAINT conversation_events_kind_check
    CHECK (kind IN ('created', 'reopened', 'follow_up_started', 'linked', 'merged'));
