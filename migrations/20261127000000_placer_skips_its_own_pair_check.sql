-- Performance (issue 11): the add-channel trigger of 20261126100001 ran for
-- every pair the worker binds (one row per new conversation), and its
-- "another ongoing conversation" probe was the largest single cost of a
-- batch after the snapshot. The worker has already made exactly that check:
-- it holds the pair's advisory lock and its snapshot read every conversation
-- bound to the pair, through conversation_channels and origin_*, under that
-- lock. Its connections say so with the session setting
-- `switchboard.placer = on` (src/store/mod.rs), and the trigger does not
-- fire for their rows. Every other session (the agent desktop, psql) is
-- checked as before, and `conversations_one_ongoing_per_pair` still refuses
-- a second ongoing conversation for an origin pair whoever inserts it.
DROP TRIGGER conversation_channels_one_ongoing_per_pair ON conversation_channels;

CREATE TRIGGER conversation_channels_one_ongoing_per_pair
    BEFORE INSERT OR UPDATE ON conversation_channels
    FOR EACH ROW
    WHEN (current_setting('switchboard.placer', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION conversation_channels_one_ongoing();
