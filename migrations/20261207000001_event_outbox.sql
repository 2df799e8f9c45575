-- Conversation events out (contract section 6): each batch writes its
-- events here in its own transaction; the publisher sends them in `seq`
-- order and deletes them once the broker has acknowledged them. `seq` is
-- taken after the batch holds its conversations' row locks, so for one
-- conversation it follows the commit order.
CREATE TABLE event_outbox (
    seq        bigserial PRIMARY KEY,
    id         uuid NOT NULL,
    key        uuid NOT NULL,
    type       text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
