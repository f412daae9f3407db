-- 0003: what the campaign dispatcher needs beyond 0001.

-- When the current send attempt started: a cut-off attempt (timeout, crash) is reconciled
-- against Twilio's Messages list from this moment on before any resend.
ALTER TABLE invitation_messages ADD COLUMN attempt_started_at timestamptz;

-- The dispatcher claims due messages per campaign and channel (fair share per campaign).
CREATE INDEX invitation_messages_claim_idx
    ON invitation_messages (campaign_id, channel, next_attempt_at) WHERE status = 'pending';
