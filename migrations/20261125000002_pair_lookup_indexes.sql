-- The batch snapshot looks conversations up by the pair they were started
-- for, closed ones included (R4's "latest conversation of the pair"); the
-- partial unique index covers only ongoing ones.
CREATE INDEX conversations_origin_pair ON conversations (origin_channel, origin_endpoint, origin_contact);
