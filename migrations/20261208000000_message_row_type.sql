-- The worker writes a batch's messages as one array of this type, one
-- element per message (`unnest($1::switchboard_new_message[])`), instead of
-- one array per column: a row is bound as the struct it is in the worker
-- (`store::writes::NewMessage`). The fields are the columns the worker
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
