-- 0004: delivery truth. The status order of onboardd.delivery.merge_status in SQL, the campaign
-- counter definitions (one function per counter, shared by the recorder's deltas and the
-- recount), orphan status callbacks, and indexes for reconciliation and statistics.

-- Mirrors onboardd.delivery._ORDER; NULL for a status that is not tracked (receiving, ...).
-- tests/integration/test_status_recorder.py checks it equals merge_status over every pair.
CREATE FUNCTION onboardd_status_order(status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE status
        WHEN 'pending' THEN 0
        WHEN 'accepted' THEN 1
        WHEN 'scheduled' THEN 2
        WHEN 'queued' THEN 3
        WHEN 'sending' THEN 4
        WHEN 'sent' THEN 5
        WHEN 'failed' THEN 6
        WHEN 'undelivered' THEN 6
        WHEN 'canceled' THEN 6
        WHEN 'delivered' THEN 7
        WHEN 'read' THEN 8
    END
$$;

-- Forward only; the first failure is kept; a later delivered/read wins over a failure.
CREATE FUNCTION onboardd_merge_status(current_status text, incoming text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN onboardd_status_order(incoming) IS NULL THEN current_status
        WHEN onboardd_status_order(incoming) > coalesce(onboardd_status_order(current_status), -1)
            THEN incoming
        ELSE current_status
    END
$$;

-- Campaign counters, defined per message row. invitation_campaigns.messages_* always equal
-- the sum of these over the campaign's messages (query delivery_recount):
--   messages_sent      accepted by Twilio: has a SID and is queued or later, including
--                      messages that later failed or were undelivered
--   messages_delivered delivered or read
--   messages_read      read
--   messages_failed    failed or undelivered now (send-time refusals and failed callbacks;
--                      a late delivered moves a message from failed to delivered)
--   messages_skipped   skipped (opted out, invalid number, invited in the last 24 h, ...)
CREATE FUNCTION onboardd_counts_sent(status text, sid text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN sid IS NOT NULL
        AND status IN ('queued', 'sent', 'delivered', 'read', 'failed', 'undelivered')
        THEN 1 ELSE 0 END
$$;

CREATE FUNCTION onboardd_counts_delivered(status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN status IN ('delivered', 'read') THEN 1 ELSE 0 END
$$;

CREATE FUNCTION onboardd_counts_read(status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN status = 'read' THEN 1 ELSE 0 END
$$;

CREATE FUNCTION onboardd_counts_failed(status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN status IN ('failed', 'undelivered') THEN 1 ELSE 0 END
$$;

CREATE FUNCTION onboardd_counts_skipped(status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN status = 'skipped' THEN 1 ELSE 0 END
$$;

-- Status callbacks for a SID not (yet) in invitation_messages: the dispatcher's accepted
-- outcome may still be on its way. Applied when the SID appears; dropped after the delivery wait.
CREATE TABLE status_callback_orphans (
    id bigserial PRIMARY KEY,
    sid varchar(50) NOT NULL,
    status varchar(20) NOT NULL,
    at timestamptz NOT NULL,
    error_code integer,
    error_message text,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_callback_orphans_sid_idx ON status_callback_orphans (sid);
CREATE INDEX status_callback_orphans_received_idx ON status_callback_orphans (received_at);

-- Reconciliation: accepted messages still waiting for a final status.
CREATE INDEX invitation_messages_unfinished_idx
    ON invitation_messages (queued_at) WHERE status IN ('queued', 'sent');

-- Statistics: registrations attributed to the campaign that last invited the customer.
CREATE INDEX imported_customers_last_campaign_idx
    ON imported_customers (last_campaign_id) WHERE last_campaign_id IS NOT NULL;
