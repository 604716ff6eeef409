-- A delivery belongs to its conversation: deleting the conversation (a privacy request,
-- retention) deletes its pending and past deliveries, whose bodies may quote the visitor.
ALTER TABLE webhook_outbox ADD COLUMN conversation_id TEXT REFERENCES conversations(id) ON DELETE CASCADE;
CREATE INDEX webhook_outbox_conversation ON webhook_outbox (conversation_id);
UPDATE webhook_outbox SET conversation_id = json_extract(body, '$.data.conversation')
    WHERE json_valid(body) AND json_extract(body, '$.data.conversation') IN (SELECT id FROM conversations);
-- Finished deliveries are pruned after a while (see webhooks::KEEP_FINISHED).
CREATE INDEX webhook_outbox_finished ON webhook_outbox (COALESCE(delivered_at, failed_at))
    WHERE delivered_at IS NOT NULL OR failed_at IS NOT NULL;
