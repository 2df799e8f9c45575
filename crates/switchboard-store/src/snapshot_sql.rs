//! The one statement that reads a batch's [`Snapshot`](crate::placement::batch::Snapshot).
//!
//! It used to be six queries and as many round trips (issue 11 measured the
//! snapshot as the second largest share of a batch). Each part below keeps
//! its own index probe; the parts are returned as rows of one `UNION ALL`,
//! told apart by `kind`, with typed columns (no JSON to encode or parse):
//!
//! | kind | channel, endpoint, key | conv | other | created_at, closed_at, status, name |
//! |---|---|---|---|---|
//! | `now` | | | | `created_at` = `clock_timestamp()` |
//! | `message` | stored message key (R0, R1, R2) | its conversation | | |
//! | `pair` | pair (key = contact) | a conversation bound to it | | |
//! | `reply` | batch message key (R1r) | conversation of a stored reply naming it | | `ord`: earliest stored first |
//! | `conversation` | | id, locked | `merged_into` | its row |
//! | `customer` | channel, key = address | person id | | `name` |
//! | `holder` | key = Message-ID (R7) | conversation holding a copy | | `created_at`, `status` |
//! | `link` | | from | to | an existing `related` link among holders |
//!
//! Parameters: $1-$3 the batch's keys and reference candidates, $4-$6 its
//! pairs, $7-$9 its own keys, $10-$11 its contacts, $12 its emails'
//! Message-IDs ($9 also serves the GIN probe of `references`). The
//! statement's shape does not depend on the batch, so sqlx prepares it once
//! per connection, and Postgres plans it once (`Store::connect_lazy`).
//!
//! The merge chains start from every conversation the other parts name and
//! are locked in ascending id order (`ORDER BY id FOR NO KEY UPDATE`: the
//! sort runs below the row locks). Holders are read but not locked: R7 needs
//! only their creation time, which never changes, and the Message-ID lock
//! keeps other copies from being stored meanwhile.

/// Public so that tests can `EXPLAIN` the very statement the worker runs.
pub const SNAPSHOT_SQL: &str = r#"
WITH RECURSIVE
  mk AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS k(channel, endpoint, external_id)),
  pk AS (SELECT * FROM unnest($4::text[], $5::text[], $6::text[]) AS k(channel, endpoint, contact)),
  ok AS (SELECT * FROM unnest($7::text[], $8::text[], $9::text[]) AS k(channel, endpoint, external_id)),
  stored AS (
    SELECT m.channel, m.endpoint, m.external_id, m.conversation_id FROM mk
    JOIN messages m ON m.channel = mk.channel AND m.endpoint = mk.endpoint AND m.external_id = mk.external_id),
  pairs AS (
    SELECT cc.channel, cc.endpoint, cc.contact, cc.conversation_id FROM pk
      JOIN conversation_channels cc ON cc.channel = pk.channel AND cc.endpoint = pk.endpoint AND cc.contact = pk.contact
    UNION
    SELECT c.origin_channel, c.origin_endpoint, c.origin_contact, c.id FROM pk
      JOIN conversations c ON c.origin_channel = pk.channel AND c.origin_endpoint = pk.endpoint
                          AND c.origin_contact = pk.contact),
  -- Two probes, each answerable by one index only: the btree on
  -- in_reply_to per key, and one probe of the GIN index on references for
  -- every id of the batch at once (`&&`), joined to the keys afterwards. A
  -- references test next to a channel and endpoint condition let the
  -- planner filter a whole endpoint's messages instead, through any index
  -- that can be probed by those columns.
  cited AS MATERIALIZED (
    SELECT m.id, m.channel, m.endpoint, m."references", m.conversation_id, m.stored_at FROM messages m
    WHERE m."references" && $9::text[] AND cardinality(m."references") > 0),
  replies AS (
    SELECT ok.channel, ok.endpoint, ok.external_id, r.conversation_id, r.stored_at, r.id FROM ok
    CROSS JOIN LATERAL (
        SELECT m.id, m.conversation_id, m.stored_at FROM messages m
        WHERE m.channel = ok.channel AND m.endpoint = ok.endpoint AND m.in_reply_to = ok.external_id
      UNION
        SELECT c.id, c.conversation_id, c.stored_at FROM cited c
        WHERE c.channel = ok.channel AND c.endpoint = ok.endpoint AND ok.external_id = ANY(c."references")) r),
  holders AS (
    SELECT DISTINCT m.external_id, c.id, c.created_at, c.status FROM messages m
    JOIN conversations c ON c.id = m.conversation_id
    WHERE m.channel = 'email' AND m.direction = 'inbound' AND m.external_id = ANY($12::text[])),
  chain (id, hops) AS (
    SELECT id, 0 FROM conversations
    WHERE id = ANY(ARRAY(SELECT conversation_id FROM stored UNION SELECT conversation_id FROM pairs
                         UNION SELECT conversation_id FROM replies))
  UNION
    SELECT c.merged_into, chain.hops + 1 FROM chain JOIN conversations c ON c.id = chain.id
    WHERE c.merged_into IS NOT NULL AND chain.hops < 64),
  locked AS (
    SELECT id, status, created_at, closed_at, merged_into FROM conversations
    WHERE id = ANY(ARRAY(SELECT id FROM chain)) ORDER BY id FOR NO KEY UPDATE)
SELECT 'now' AS kind, NULL::text AS channel, NULL::text AS endpoint, NULL::text AS key, NULL::uuid AS conv,
       NULL::uuid AS other, clock_timestamp() AS created_at, NULL::timestamptz AS closed_at, NULL::text AS status,
       NULL::text AS name, NULL::bigint AS ord
UNION ALL
SELECT 'message', channel, endpoint, external_id, conversation_id, NULL, NULL, NULL, NULL, NULL, NULL FROM stored
UNION ALL
SELECT 'pair', channel, endpoint, contact, conversation_id, NULL, NULL, NULL, NULL, NULL, NULL FROM pairs
UNION ALL
SELECT 'reply', channel, endpoint, external_id, conversation_id, NULL, NULL, NULL, NULL, NULL,
       row_number() OVER (ORDER BY stored_at, id) FROM replies
UNION ALL
SELECT 'conversation', NULL, NULL, NULL, id, merged_into, created_at, closed_at, status, NULL, NULL FROM locked
UNION ALL
-- The lowest person id wins when several claim one address: stable across replays.
(SELECT DISTINCT ON (pc.channel, pc.address) 'customer', pc.channel, NULL, pc.address, p.id, NULL, NULL, NULL,
        NULL, p.name, NULL
 FROM unnest($10::text[], $11::text[]) AS k(channel, address)
 JOIN person_contacts pc ON pc.channel = k.channel AND pc.address = k.address
 JOIN people p ON p.id = pc.person_id
 ORDER BY pc.channel, pc.address, p.id)
UNION ALL
SELECT 'holder', NULL, NULL, external_id, id, NULL, created_at, NULL, status, NULL, NULL FROM holders
UNION ALL
SELECT 'link', NULL, NULL, NULL, l.conversation_id, l.related_conversation_id, NULL, NULL, NULL, NULL, NULL
FROM conversation_links l
WHERE l.kind = 'related' AND l.conversation_id IN (SELECT id FROM holders)
  AND l.related_conversation_id IN (SELECT id FROM holders)
ORDER BY ord
"#;

/// The sender policy's participation facts (`snapshot::participation`): for
/// each (conversation, sender, sender's domain), whether the sender or the
/// domain took part in the conversation or in one merged into it.
///
/// Each conversation's members (itself and those merged into it) as
/// an array, so that every lookup below probes an index by
/// conversation id (`= ANY`), whatever plan the session settings
/// leave the planner: with the members as a joined relation it
/// chose to walk every message of the table for each row.
pub const PARTICIPATION_SQL: &str = r#"WITH RECURSIVE asked AS (
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(conv, sender, domain)
         ), members (conv, member, hops) AS (
             SELECT DISTINCT conv, conv, 0 FROM asked
           UNION
             SELECT m.conv, c.id, m.hops + 1 FROM members m JOIN conversations c ON c.merged_into = m.member
             WHERE m.hops < 64
         ), grouped AS (
             SELECT conv, array_agg(DISTINCT member) AS ids FROM members GROUP BY conv
         )
         SELECT u.conv, u.sender, u.domain,
                EXISTS (SELECT 1 FROM conversation_channels cc
                        WHERE cc.conversation_id = ANY (g.ids) AND cc.contact = u.sender)
                OR EXISTS (SELECT 1 FROM messages m
                           WHERE m.conversation_id = ANY (g.ids)
                             AND (m.contact = u.sender OR m.details->'to' ? u.sender OR m.details->'cc' ? u.sender))
                    AS by_address,
                EXISTS (SELECT 1 FROM conversation_channels cc
                        WHERE cc.conversation_id = ANY (g.ids) AND split_part(cc.contact, '@', 2) = u.domain)
                OR EXISTS (SELECT 1 FROM messages m
                           WHERE m.conversation_id = ANY (g.ids)
                             AND (split_part(m.contact, '@', 2) = u.domain
                                  OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(
                                                 COALESCE(m.details->'to', '[]') || COALESCE(m.details->'cc', '[]')) a
                                             WHERE split_part(a, '@', 2) = u.domain)))
                    AS by_domain
         FROM asked u JOIN grouped g ON g.conv = u.conv"#;

/// R8's first facts (`snapshot::threads`): each asked conversation's own
/// row and events, which the core reads as a
/// [`crate::placement::late_parent::Standing`]. Nothing is decided here.
pub(crate) const STANDING_SQL: &str = r#"SELECT c.id AS conv, c.status, c.created_at, c.merged_into IS NOT NULL AS merged,
       (c.assignee IS NOT NULL OR c.queue IS NOT NULL OR c.form IS NOT NULL) AS owned,
       EXISTS (SELECT 1 FROM conversation_events e WHERE e.conversation_id = c.id AND e.kind = 'created')
         AS created_here,
       EXISTS (SELECT 1 FROM conversation_events e WHERE e.conversation_id = c.id AND e.kind = 'reopened')
         AS reopened
FROM conversations c
WHERE c.id = ANY($1::uuid[])
ORDER BY c.id"#;

/// R8's second facts, for the conversations whose standing the core found
/// may be untouched (`$1`): the first `$2 + 1` messages of each, its own
/// and those of the conversations merged into it, in the order stored. For
/// each: who wrote it (`inbound`), whether the conversation was merged in
/// by hand (a member without R8's `merged` event), the ids it names, and
/// the conversations (with their merge chains) holding the messages those
/// ids name. The core decides what these mean
/// ([`crate::placement::late_parent::untouched`], and at most
/// `late_parent::MAX_MESSAGES`, hence one more read).
pub(crate) const THREADS_SQL: &str = r#"WITH RECURSIVE
  members (conv, member, hops) AS (
    SELECT id, id, 0 FROM unnest($1::uuid[]) AS a(id)
  UNION
    SELECT m.conv, c.id, m.hops + 1 FROM members m JOIN conversations c ON c.merged_into = m.member
    WHERE m.hops < 64),
  grouped AS (
    SELECT conv, array_agg(member) AS ids,
           bool_or(member <> conv AND NOT EXISTS (SELECT 1 FROM conversation_events e
                                                   WHERE e.conversation_id = member AND e.kind = 'merged'))
             AS merged_by_hand
    FROM members GROUP BY conv)
SELECT g.conv, g.merged_by_hand, m.external_id, m.contact, m.direction = 'inbound' AS inbound, x.names,
       ARRAY(WITH RECURSIVE up (id, next, hops) AS (
                 SELECT c.id, c.merged_into, 0 FROM messages n JOIN conversations c ON c.id = n.conversation_id
                 WHERE n.channel = m.channel AND n.endpoint = m.endpoint AND n.external_id = ANY (x.names)
               UNION
                 SELECT c.id, c.merged_into, up.hops + 1 FROM up JOIN conversations c ON c.id = up.next
                 WHERE up.hops < 64)
             SELECT DISTINCT id FROM up) AS named_in
FROM grouped g
CROSS JOIN LATERAL (SELECT * FROM messages m WHERE m.conversation_id = ANY (g.ids)
                    ORDER BY m.stored_at, m.id LIMIT $2 + 1) m
CROSS JOIN LATERAL (SELECT CASE WHEN m.in_reply_to IS NULL THEN m."references"
                                ELSE m.in_reply_to || m."references" END AS names) x
ORDER BY g.conv, m.stored_at, m.id"#;
