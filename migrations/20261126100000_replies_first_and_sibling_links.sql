-- R1r (replies that came first): a message looks up the stored messages at
-- its endpoint that name its id, by `in_reply_to` (email, Messenger) or in
-- `references` (email). One index per probe.
CREATE INDEX messages_in_reply_to ON messages (channel, endpoint, in_reply_to) WHERE in_reply_to IS NOT NULL;
CREATE INDEX messages_references ON messages USING gin ("references");

-- Sibling links are the union over every Message-ID. Ours: true while R7
-- (copies of one email) is the only reason a `related` link exists. Only
-- such links are ever deleted, and only when no Message-ID calls for them;
-- a link R1r made, or one both rules call for, stays.
ALTER TABLE conversation_links ADD COLUMN sibling_only boolean NOT NULL DEFAULT false;
-- Until now R7 was the only rule that made `related` links.
UPDATE conversation_links SET sibling_only = true WHERE kind = 'related';
