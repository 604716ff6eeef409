-- Whose conversation this is, when the shop vouched for it (verified identity) or the
-- visitor proved an order with their e-mail: privacy requests (export, delete) find a
-- person's conversations by these.
ALTER TABLE conversations ADD COLUMN visitor_id TEXT;
ALTER TABLE conversations ADD COLUMN contact_email TEXT COLLATE NOCASE;
CREATE INDEX conversations_visitor ON conversations (visitor_id) WHERE visitor_id IS NOT NULL;
CREATE INDEX conversations_email ON conversations (contact_email) WHERE contact_email IS NOT NULL;

-- Deleting a conversation cascades to these tables; without an index on the conversation
-- each cascade would scan them.
CREATE INDEX csat_conversation ON csat (conversation_id);
CREATE INDEX order_links_conversation ON order_links (conversation_id);
CREATE INDEX order_notices_conversation ON order_notices (conversation_id);
