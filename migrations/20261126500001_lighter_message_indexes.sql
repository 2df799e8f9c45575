-- Performance (issue 11): fewer index entries per stored message. Nine in
-- ten messages are SMS or Messenger messages with no `references` and no
-- sibling copies, yet every one of them was entered in the two indexes
-- below. Both become partial, covering only the rows their lookups can
-- find; the queries that use them (src/store/snapshot.rs, writes.rs) repeat
-- the predicates so the planner can prove the partial index applies.

-- R1r's `references @> ARRAY[id]` can only match a non-empty array. A GIN
-- index also keeps an entry for every empty array, and its pending list,
-- which every probe scans, filled up with them.
DROP INDEX messages_references;
CREATE INDEX messages_references ON messages USING gin ("references") WHERE cardinality("references") > 0;

-- R7 looks up inbound email copies by Message-ID only.
DROP INDEX messages_channel_external_id;
CREATE INDEX messages_email_copies ON messages (external_id) WHERE channel = 'email' AND direction = 'inbound';
