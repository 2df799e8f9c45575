-- The conversation store of contract section 2. Names of the contract's tables
-- and columns are fixed (other services read and write them); everything
-- marked "ours" is Switchboard's own addition.

CREATE TABLE people (
    id      uuid PRIMARY KEY,
    name    text,
    gender  text,
    city    text,
    country text
);

CREATE TABLE person_contacts (
    person_id uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    channel   text NOT NULL,
    -- normalized as in contract section 1, by the People service
    address   text NOT NULL,
    PRIMARY KEY (channel, address, person_id)
);

CREATE TABLE conversations (
    id              uuid PRIMARY KEY,
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'waiting', 'pending', 'solved', 'closed')),
    priority        text NOT NULL DEFAULT 'normal'
                    CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    topic           text NOT NULL,
    customer_id     uuid,
    queue           text,
    assignee        text,
    form            jsonb,
    merged_into     uuid REFERENCES conversations (id),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_message_at timestamptz,
    closed_at       timestamptz,
    -- ours: the pair Switchboard started the conversation for (null for
    -- conversations other services create). I1 is enforced on it by the
    -- partial unique index below, as a last line of defence behind the
    -- advisory locks the worker takes (see src/store/locks.rs).
    origin_channel  text,
    origin_endpoint text,
    origin_contact  text
);

-- I1: at most one ongoing conversation per pair. An agent's status change that
-- would reopen a second conversation for a pair is refused here too.
CREATE UNIQUE INDEX conversations_one_ongoing_per_pair
    ON conversations (origin_channel, origin_endpoint, origin_contact)
    WHERE status <> 'closed' AND merged_into IS NULL;
CREATE INDEX conversations_merged_into ON conversations (merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE conversation_channels (
    conversation_id uuid NOT NULL REFERENCES conversations (id),
    channel         text NOT NULL CHECK (channel IN ('email', 'sms', 'messenger')),
    endpoint        text NOT NULL,
    contact         text NOT NULL,
    -- ours
    added_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (conversation_id, channel, endpoint, contact)
);
CREATE INDEX conversation_channels_pair ON conversation_channels (channel, endpoint, contact);

CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id),
    channel         text NOT NULL CHECK (channel IN ('email', 'sms', 'messenger')),
    direction       text NOT NULL DEFAULT 'inbound' CHECK (direction IN ('inbound', 'outbound')),
    endpoint        text NOT NULL,
    contact         text NOT NULL,
    external_id     text NOT NULL,
    subject         text,
    body_text       text NOT NULL DEFAULT '',
    body_html       text,
    in_reply_to     text,
    "references"    text[] NOT NULL DEFAULT '{}',
    auto_generated  boolean NOT NULL DEFAULT false,
    sent_at         timestamptz,
    received_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    raw             bytea,
    -- ours: recipients, attachments and provider extras for the desktop
    details         jsonb NOT NULL DEFAULT '{}',
    stored_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT messages_channel_endpoint_external_id_key UNIQUE (channel, endpoint, external_id)
);
CREATE INDEX messages_conversation ON messages (conversation_id);
-- R7 finds the copies of one email at other inboxes by Message-ID.
CREATE INDEX messages_channel_external_id ON messages (channel, external_id);

CREATE TABLE conversation_links (
    conversation_id         uuid NOT NULL REFERENCES conversations (id),
    related_conversation_id uuid NOT NULL REFERENCES conversations (id),
    kind                    text NOT NULL CHECK (kind IN ('related', 'follow_up')),
    cause_message_id        uuid,
    created_at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT conversation_links_unique UNIQUE (conversation_id, related_conversation_id, kind),
    CHECK (conversation_id <> related_conversation_id)
);
CREATE INDEX conversation_links_related ON conversation_links (related_conversation_id);

CREATE TABLE conversation_events (
    id                      bigserial PRIMARY KEY,
    conversation_id         uuid NOT NULL REFERENCES conversations (id),
    kind                    text NOT NULL
                            CHECK (kind IN ('created', 'reopened', 'follow_up_started', 'linked')),
    from_status             text,
    to_status               text,
    message_id              uuid,
    at                      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- ours: the other conversation of a link or follow-up
    related_conversation_id uuid
);
CREATE INDEX conversation_events_conversation ON conversation_events (conversation_id);
