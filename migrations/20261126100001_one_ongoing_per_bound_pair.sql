-- I1 for every pair a conversation is bound to, not only the pair it was
-- started for (`conversations_one_ongoing_per_pair` covers `origin_*`).
--
-- The agent desktop binds pairs with a plain INSERT INTO
-- conversation_channels (contract section 4). The worker decides "this pair
-- has no ongoing conversation, create one" under an advisory lock on the
-- pair; the trigger below takes the same lock, so an agent's binding and a
-- worker's batch for that pair run one after the other: a binding held open
-- makes the worker wait and then see it, and a binding attempted after the
-- worker created a conversation for the pair sees that conversation and is
-- refused.

-- The worker's pair lock key (src/store/locks.rs): the first 8 bytes of
-- SHA-256("pair" NUL channel NUL endpoint NUL contact NUL), big-endian.
CREATE FUNCTION switchboard_pair_key(channel text, endpoint text, contact text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ('x' || encode(substring(sha256(
               convert_to('pair', 'UTF8') || '\x00'::bytea
            || convert_to(channel, 'UTF8') || '\x00'::bytea
            || convert_to(endpoint, 'UTF8') || '\x00'::bytea
            || convert_to(contact, 'UTF8') || '\x00'::bytea) FROM 1 FOR 8), 'hex'))::bit(64)::bigint
$$;

-- Another ongoing conversation (not closed, not merged) bound to the pair,
-- through conversation_channels or as the pair it was started for.
CREATE FUNCTION switchboard_other_ongoing(conv uuid, p_channel text, p_endpoint text, p_contact text) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT o.id FROM conversations o
    WHERE o.id <> conv AND o.status <> 'closed' AND o.merged_into IS NULL
      AND (o.id IN (SELECT cc.conversation_id FROM conversation_channels cc
                    WHERE cc.channel = p_channel AND cc.endpoint = p_endpoint AND cc.contact = p_contact)
           OR (o.origin_channel = p_channel AND o.origin_endpoint = p_endpoint AND o.origin_contact = p_contact))
    ORDER BY o.id
    LIMIT 1
$$;

CREATE FUNCTION conversation_channels_one_ongoing() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    other uuid;
BEGIN
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

CREATE TRIGGER conversation_channels_one_ongoing_per_pair
    BEFORE INSERT OR UPDATE ON conversation_channels
    FOR EACH ROW EXECUTE FUNCTION conversation_channels_one_ongoing();

-- An agent reopening a closed conversation whose bound pairs already have
-- another ongoing conversation is refused too (the partial unique index does
-- this for `origin_*` only). No advisory lock is needed here: the worker
-- locks every conversation bound to the pairs it decides FOR NO KEY UPDATE,
-- so this update and a worker's batch for those pairs already run one after
-- the other, and this check runs after the batch committed.
CREATE FUNCTION conversations_reopen_one_ongoing() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bound record;
    other uuid;
BEGIN
    FOR bound IN SELECT channel, endpoint, contact FROM conversation_channels WHERE conversation_id = NEW.id LOOP
        other := switchboard_other_ongoing(NEW.id, bound.channel, bound.endpoint, bound.contact);
        IF other IS NOT NULL THEN
            RAISE EXCEPTION 'the pair (%, %, %) already belongs to the ongoing conversation %',
                bound.channel, bound.endpoint, bound.contact, other
                USING ERRCODE = 'unique_violation',
                      CONSTRAINT = 'conversation_channels_one_ongoing_per_pair';
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;

CREATE TRIGGER conversations_reopen_one_ongoing_per_pair
    AFTER UPDATE OF status, merged_into ON conversations
    FOR EACH ROW
    WHEN (NEW.status <> 'closed' AND NEW.merged_into IS NULL
          AND (OLD.status = 'closed' OR OLD.merged_into IS NOT NULL))
    EXECUTE FUNCTION conversations_reopen_one_ongoing();
