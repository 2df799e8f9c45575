-- I5 in both directions (contract version 2): two conversations are linked
-- `related` at most once, A to B and B to A counting as the same pair. The
-- old unique key was on the ordered pair, and two R1r parents placed in one
-- batch could link A to B and B to A.
--
-- Existing reversed duplicates are folded first: of the two rows, the one
-- created first stays (ties broken by conversation id); it stays R7's alone
-- (`sibling_only`) only when both rows were, since a link another rule made
-- must never be deleted as a stale sibling link.

-- No worker may add a link between the fold and the index: a reversed pair
-- committed in between would make the index fail to build.
LOCK TABLE conversation_links IN SHARE ROW EXCLUSIVE MODE;

UPDATE conversation_links keep
SET sibling_only = keep.sibling_only AND gone.sibling_only
FROM conversation_links gone
WHERE keep.kind = 'related' AND gone.kind = 'related'
  AND gone.conversation_id = keep.related_conversation_id
  AND gone.related_conversation_id = keep.conversation_id
  AND (keep.created_at, keep.conversation_id) < (gone.created_at, gone.conversation_id);

DELETE FROM conversation_links gone
USING conversation_links keep
WHERE keep.kind = 'related' AND gone.kind = 'related'
  AND gone.conversation_id = keep.related_conversation_id
  AND gone.related_conversation_id = keep.conversation_id
  AND (keep.created_at, keep.conversation_id) < (gone.created_at, gone.conversation_id);

-- Takes a SHARE lock on conversation_links while it builds (writers wait;
-- the table holds a few rows per conversation, so seconds at most).
CREATE UNIQUE INDEX conversation_links_related_once_per_pair
    ON conversation_links (LEAST(conversation_id, related_conversation_id),
                           GREATEST(conversation_id, related_conversation_id))
    WHERE kind = 'related';
