-- Performance (issue 11): the add-channel trigger of 20261126100001 ran for
-- every pair the worker binds (one row per new conversation), and its
-- "another ongoing conversation" probe was the largest single cost of a
-- batch after the snapshot. The worker has already made exactly that check:
-- it holds the pair's advisory lock and its snapshot read every conversation
-- bound to the pair, through conversation_channels and origin_*, under that
-- lock. Its connections say so with the session setting
-- `switchboard.placer = on` (src/store/mod.rs), and the trigger leaves their
-- rows alone. Every other session (the agent desktop, psql) is checked as
-- before, and `conversations_one_ongoing_per_pair` still refuses a second
-- ongoing conversation for an origin pair whoever inserts it.
CREATE OR REPLACE FUNCTION conversation_channels_one_ongoing() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    other uuid;
BEGIN
    IF current_setting('switchboard.placer', true) = 'on' THEN
        RETURN NEW;
    END IF;
    -- Waits for a worker's batch deciding this pair; the statements below
    -- then see what it committed (READ COMMITTED, a new snapshot each).
    PERFORM pg_advisory_xact_lock(switchboard_pair_key(NEW.channel, NEW.endpoint, NEW.contact));
    IF EXISTS (SELECT 1 FROM conversations c
               WHERE c.id = NEW.conversation_id AND c.status <> 'closed' AND c.merged_into IS NULL) THEN
        other := switchboard_other_ongoing(NEW.conversation_id, NEW.channel, NEW.endpoint, NEW.contact);
        IF other IS NOT NULL THEN
            RAISE EXCEPTION 'the pair (%, %, %) already belongs to the ongoing conversation %',
                NEW.channel, NEW.endpoint, NEW.contact, other
                USING ERRCODE = 'unique_violation',
                      CONSTRAINT = 'conversation_channels_one_ongoing_per_pair',
                      HINT = 'Merge the two conversations instead, or close one first.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
