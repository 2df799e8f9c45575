-- Performance (issue 11): the add-channel trigger of 20261126100001 runs for
-- every row the worker inserts into conversation_channels too (one per new
-- conversation). Its "another ongoing conversation bound to the pair" test
-- was `id IN (...) OR origin pair = ...`: Postgres cannot answer an OR over a
-- subquery with an index, so every new conversation scanned the whole
-- conversations table and a batch's cost grew with the table. The same test
-- as two index probes (conversation_channels_pair, conversations_origin_pair)
-- joined by UNION gives the same answer in constant time.
CREATE OR REPLACE FUNCTION switchboard_other_ongoing(conv uuid, p_channel text, p_endpoint text, p_contact text) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT o.id FROM conversations o
    WHERE o.id IN (SELECT cc.conversation_id FROM conversation_channels cc
                   WHERE cc.channel = p_channel AND cc.endpoint = p_endpoint AND cc.contact = p_contact
                   UNION ALL
                   SELECT c.id FROM conversations c
                   WHERE c.origin_channel = p_channel AND c.origin_endpoint = p_endpoint AND c.origin_contact = p_contact)
      AND o.id <> conv AND o.status <> 'closed' AND o.merged_into IS NULL
    ORDER BY o.id
    LIMIT 1
$$;
