-- 0006: asynchronous WhatsApp -> SMS fallback. When Twilio accepts a WhatsApp invitation and
-- a later status callback reports the number unreachable on WhatsApp (63003/63024/63005) for
-- a campaign on channel `both`, the status recorder re-queues the message on SMS. The
-- WhatsApp SID moves to fallback_sid, so twilio_message_sid can carry the SMS SID and later
-- callbacks for the WhatsApp SID are recognised (and ignored) instead of kept as orphans.
ALTER TABLE invitation_messages ADD COLUMN fallback_sid varchar(50);

CREATE UNIQUE INDEX invitation_messages_fallback_sid_idx
    ON invitation_messages (fallback_sid) WHERE fallback_sid IS NOT NULL;
