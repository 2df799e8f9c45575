-- Performance (issue 11): how the worker's lookups reach their rows.
--
-- 1. The unique key of `messages` leads with `external_id`.
--
-- The worker's connections plan each statement once, usually while a fresh
-- database is still empty, and keep that plan until the tables are analyzed.
-- On empty tables the planner served R7's copy lookup (inbound email by
-- Message-ID only, any endpoint) with the unique index on
-- (channel, endpoint, external_id) probed by `channel = 'email'` alone, then
-- filtered every stored email: a batch's snapshot cost grew with each email
-- stored (tests/it/plans.rs). With `external_id` first, the one unique index
-- answers both the exact key lookups (R0, references) and the copy lookup,
-- and no plan can scan a whole channel. The partial index that served the
-- copy lookup is dropped: one index entry fewer per inbound email. The
-- constraint keeps its name; it is still unique on the same three columns.
--
-- 2. Addresses and ids compare byte for byte (`COLLATE "C"`).
--
-- Channels, endpoints, contacts, message ids and references are
-- identifiers: the worker only compares them for equality. Under the
-- database's default collation every comparison in an index went through
-- the locale (placing a backlog was about 11% slower in a database whose
-- default collation is ICU `en-US` than in one with `C.UTF-8`, which
-- Postgres 15 does not treat as byte order either), and an index on such
-- columns must be rebuilt whenever the operating system's collation library
-- changes its rules. Equality itself is unchanged: every collation a
-- database can default to is deterministic, so two strings are equal only
-- when their bytes are. What readers of these columns see change: sorting
-- is by bytes, and `lower()`, `upper()`, `ILIKE` and `~*` fold ASCII letters
-- only, unless a query names a collation (`ORDER BY contact COLLATE
-- "en-US-x-icu"`); a join of one of them with a text column of the default
-- collation compares under "C", so an index on the other column can serve it
-- only if it is "C" too. `person_contacts` is written by the People service,
-- and its schema is Switchboard's (docs/contract.md, section 2).
--
-- No row is rewritten (the type stays text), but each table is read again:
-- its CHECK constraints are validated anew and the indexes on these columns
-- rebuilt. sqlx runs the migration in one transaction, so the four tables
-- stay locked until it commits (0.35 s for 95,000 messages here).

ALTER TABLE messages DROP CONSTRAINT messages_channel_endpoint_external_id_key;
DROP INDEX messages_email_copies;

ALTER TABLE messages
    ALTER COLUMN channel TYPE text COLLATE "C",
    ALTER COLUMN endpoint TYPE text COLLATE "C",
    ALTER COLUMN contact TYPE text COLLATE "C",
    ALTER COLUMN external_id TYPE text COLLATE "C",
    ALTER COLUMN in_reply_to TYPE text COLLATE "C",
    ALTER COLUMN "references" TYPE text[] COLLATE "C",
    ADD CONSTRAINT messages_channel_endpoint_external_id_key UNIQUE (external_id, channel, endpoint);

ALTER TABLE conversation_channels
    ALTER COLUMN channel TYPE text COLLATE "C",
    ALTER COLUMN endpoint TYPE text COLLATE "C",
    ALTER COLUMN contact TYPE text COLLATE "C";

ALTER TABLE conversations
    ALTER COLUMN origin_channel TYPE text COLLATE "C",
    ALTER COLUMN origin_endpoint TYPE text COLLATE "C",
    ALTER COLUMN origin_contact TYPE text COLLATE "C";

ALTER TABLE person_contacts
    ALTER COLUMN channel TYPE text COLLATE "C",
    ALTER COLUMN address TYPE text COLLATE "C";
