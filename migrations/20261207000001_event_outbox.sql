-- Conversation events out (contract section 6): each batch writes its
-- events here in its own transaction; the publisher sends them in `seq`
-- order and deletes a row once the broker has acknowledged all its events.
-- `seq` is taken after the batch holds its conversations' row locks, so for
-- one conversation it follows the commit order.
--
-- One row per batch: `payload` holds its events in order, one line each
-- (`key TAB type TAB CloudEvent JSON`), written once, read once, never
-- queried; `events` counts them.
CREATE TABLE event_outbox (
    seq        bigserial PRIMARY KEY,
    events     integer NOT NULL,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
