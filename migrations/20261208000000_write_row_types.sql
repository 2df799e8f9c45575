-- The worker writes a batch's messages as one array of this type, one
-- element per message (`unnest($1::switchboard_new_message[])`), instead of
-- one array per column: a row is bound as the struct it is in the worker
-- (`store::records::NewMessage`). The fields are the columns the worker
-- sets, in this order; the others take their defaults. Postgres checks each
-- field's type as it receives the array, so the two cannot drift apart
-- unnoticed.
CREATE TYPE switchboard_new_message AS (
    id              uuid,
    conversation_id uuid,
    channel         text,
    endpoint        text,
    contact         text,
    external_id     text,
    subject         text,
    body_text       text,
    body_html       text,
    in_reply_to     text,
    "references"    text[],
    auto_generated  boolean,
    sent_at         timestamptz,
    received_at     timestamptz,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    raw             bytea,
    details         jsonb
);

-- The same for the other rows a batch writes: the conversations it starts
-- (and their pairs), the stored conversations it changes, its audit events,
-- its links, and R8's merges (`store::records`).
CREATE TYPE switchboard_new_conversation AS (
    id              uuid,
    topic           text,
    customer_id     uuid,
    copy_from       uuid,
    channel         text,
    endpoint        text,
    contact         text,
    created_at      timestamptz,
    last_message_at timestamptz
);

CREATE TYPE switchboard_conversation_change AS (
    id              uuid,
    reopen          boolean,
    last_message_at timestamptz
);

CREATE TYPE switchboard_new_event AS (
    conversation_id uuid,
    kind            text,
    from_status     text,
    to_status       text,
    message_id      uuid,
    related         uuid
);

CREATE TYPE switchboard_new_link AS (
    from_id uuid,
    to_id   uuid,
    kind    text,
    cause   uuid,
    status  text,
    sibling boolean
);

CREATE TYPE switchboard_late_merge AS (
    id     uuid,
    target uuid
);
