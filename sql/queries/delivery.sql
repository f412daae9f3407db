-- Delivery truth: the status recorder's set-based statements, opt-outs and reconciliation (the
-- campaign statistics are in delivery_stats.sql). Counter semantics: see the onboardd_counts_*
-- functions in 0004_delivery.sql.

-- name: delivery_apply_outcomes
-- The dispatcher's send outcomes, one row per message (folded in Python). Applies only to
-- messages still pending or in flight; a stale outcome for a message already past that is
-- ignored (the returned ids tell which were applied), and so is an outcome naming a claim token
-- ($13) the row no longer carries: the attempt was taken over by the lease sweep, whose own
-- outcome decides (NULL: no token to check). Message, customer, opt-out and campaign
-- counters change in this one statement; counter deltas come from the old vs new row.
WITH i AS (
    SELECT *
    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                $6::text[], $7::integer[], $8::text[], $9::text[], $10::timestamptz[],
                $11::boolean[], $12::integer[], $13::bigint[])
        AS t(message_id, outcome, at, channel, sid, sender, error_code, error_message,
             skip_reason, next_attempt_at, opted_out, attempts, claim_token)
),
o AS (
    SELECT m.id, i.claim_token AS token, m.status AS old_status, m.twilio_message_sid AS old_sid
    FROM invitation_messages m
    JOIN i ON i.message_id = m.id
    WHERE m.status IN ('pending', 'sending')
      AND (i.claim_token IS NULL OR m.claim_token = i.claim_token)
    ORDER BY m.id
    FOR UPDATE OF m
),
u AS (
    UPDATE invitation_messages m SET
        status = CASE i.outcome
            WHEN 'accepted' THEN 'queued'
            WHEN 'failed' THEN 'failed'
            WHEN 'skipped' THEN 'skipped'
            ELSE 'pending' END,
        channel = CASE WHEN i.outcome = 'fallback' THEN 'sms' ELSE m.channel END,
        fallback_from = CASE WHEN i.outcome = 'fallback' THEN 'whatsapp' ELSE m.fallback_from END,
        twilio_message_sid = CASE WHEN i.outcome = 'accepted' THEN i.sid
                                  ELSE m.twilio_message_sid END,
        sender = coalesce(i.sender, m.sender),
        queued_at = CASE WHEN i.outcome = 'accepted' THEN i.at ELSE m.queued_at END,
        attempts = m.attempts + i.attempts,
        next_attempt_at = CASE i.outcome
            WHEN 'retry' THEN coalesce(i.next_attempt_at, now())
            WHEN 'fallback' THEN now()
            ELSE m.next_attempt_at END,
        error_code = CASE i.outcome
            WHEN 'accepted' THEN NULL
            WHEN 'skipped' THEN coalesce(i.error_code, m.error_code)
            ELSE coalesce(i.error_code, m.error_code) END,
        error_message = CASE i.outcome
            WHEN 'accepted' THEN NULL
            WHEN 'skipped' THEN coalesce(i.error_message, m.error_message)
            ELSE coalesce(i.error_message, m.error_message) END,
        skip_reason = CASE WHEN i.outcome = 'skipped' THEN i.skip_reason ELSE m.skip_reason END,
        claimed_until = NULL,
        claimed_by = NULL,
        claim_token = NULL,
        updated_at = now()
    FROM i
    JOIN o ON o.id = i.message_id AND o.token IS NOT DISTINCT FROM i.claim_token
    WHERE m.id = i.message_id
    RETURNING m.id, m.campaign_id, m.imported_customer_id, o.old_status, o.old_sid,
              m.status, m.twilio_message_sid AS sid, i.outcome, i.at, i.sender, i.opted_out
),
d AS (
    SELECT campaign_id,
           sum(onboardd_counts_sent(status, sid) - onboardd_counts_sent(old_status, old_sid))
               AS sent,
           sum(onboardd_counts_delivered(status) - onboardd_counts_delivered(old_status))
               AS delivered,
           sum(onboardd_counts_read(status) - onboardd_counts_read(old_status)) AS read,
           sum(onboardd_counts_failed(status) - onboardd_counts_failed(old_status)) AS failed,
           sum(onboardd_counts_skipped(status) - onboardd_counts_skipped(old_status)) AS skipped
    FROM u
    GROUP BY campaign_id
),
camp AS (
    UPDATE invitation_campaigns c SET
        messages_sent = c.messages_sent + d.sent,
        messages_delivered = c.messages_delivered + d.delivered,
        messages_read = c.messages_read + d.read,
        messages_failed = c.messages_failed + d.failed,
        messages_skipped = c.messages_skipped + d.skipped,
        updated_at = now()
    FROM d
    WHERE c.id = d.campaign_id
    RETURNING c.id
),
x AS (
    SELECT imported_customer_id,
           bool_or(opted_out) AS opted_out,
           max(at) FILTER (WHERE outcome = 'accepted') AS accepted_at,
           (array_agg(campaign_id ORDER BY at DESC) FILTER (WHERE outcome = 'accepted'))[1]
               AS campaign_id
    FROM u
    WHERE outcome = 'accepted' OR opted_out
    GROUP BY imported_customer_id
),
cust AS (
    UPDATE imported_customers c SET
        status = CASE
            WHEN x.opted_out AND c.status <> 'registered' THEN 'opted_out'
            WHEN x.accepted_at IS NOT NULL AND c.status NOT IN ('registered', 'opted_out')
                THEN 'invited'
            ELSE c.status END,
        opted_out_at = CASE WHEN x.opted_out THEN coalesce(c.opted_out_at, now())
                            ELSE c.opted_out_at END,
        opt_out_reason = CASE WHEN x.opted_out AND c.status <> 'registered' THEN 'stop'
                              ELSE c.opt_out_reason END,
        invited_at = coalesce(c.invited_at, x.accepted_at),
        last_invited_at = CASE WHEN x.accepted_at IS NULL THEN c.last_invited_at
                               ELSE greatest(c.last_invited_at, x.accepted_at) END,
        last_campaign_id = coalesce(x.campaign_id, c.last_campaign_id),
        updated_at = now()
    FROM x
    WHERE c.id = x.imported_customer_id
    RETURNING c.id
),
opt AS (
    INSERT INTO opt_outs (phone_hash, sender, source)
    SELECT DISTINCT c.phone_hash, coalesce(u.sender, '*'), 'twilio_21610'
    FROM u
    JOIN imported_customers c ON c.id = u.imported_customer_id
    WHERE u.opted_out
    ON CONFLICT DO NOTHING
    RETURNING phone_hash
)
SELECT u.id, u.campaign_id, u.sid, u.outcome FROM u;

-- name: delivery_flush_session
-- The status recorder's connection runs its flushes on generic plans. Their statements take
-- arrays, for which PostgreSQL otherwise plans again on every flush of a few events (a custom
-- plan per array length): for a flush of one callback that was 0.7 of its 1.2 ms. The generic
-- plans (index lookups per SID, per message, per campaign) are the plans a flush of 500
-- events gets as well. (Reset when the connection goes back to the pool.)
SET plan_cache_mode = force_generic_plan;

-- name: delivery_take_orphans
-- Callbacks that arrived before their SID was known, for SIDs that now are.
DELETE FROM status_callback_orphans
WHERE sid = ANY($1::text[])
RETURNING sid, status, at, error_code, error_message;

-- name: delivery_apply_callbacks
-- Status callbacks, one row per SID (folded in Python with merge_status). The SQL merge
-- onboardd_merge_status equals delivery.merge_status; timestamps and the error are set once.
-- Asynchronous SMS fallback: a failed/undelivered callback whose error Python classified as
-- WhatsApp-unreachable ($8), for a WhatsApp message still queued/sent whose campaign is on
-- channel `both` and sending or paused (its row locked, so a concurrent completion or channel
-- change is seen), re-queues the message on SMS instead of failing it: status pending, due
-- now, the WhatsApp SID moved to fallback_sid, the WhatsApp error recorded, its WhatsApp
-- timestamps cleared. Callbacks for such a fallback_sid are matched but change nothing.
-- Returns every SID found (changed or not; the caller keeps the others as orphans), whether
-- its change may complete the campaign (it reached a final status or left pending/sending),
-- whether this change leaves it unfinished (pending or sending, or queued or sent within the
-- delivery wait of $9 s: its campaign cannot complete before a later change of it, which asks
-- again), and whether it fell back to SMS.
WITH i AS (
    SELECT *
    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                $5::timestamptz[], $6::integer[], $7::text[], $8::boolean[])
        AS t(sid, status, sent_at, delivered_at, read_at, error_code, error_message,
             unreachable)
),
o AS (
    SELECT m.id, m.campaign_id, m.status AS old_status, m.twilio_message_sid AS sid,
           (i.unreachable AND m.channel = 'whatsapp' AND m.status IN ('queued', 'sent')
            AND onboardd_merge_status(m.status, i.status) IN ('failed', 'undelivered'))
               AS may_fall_back
    FROM invitation_messages m
    JOIN i ON i.sid = m.twilio_message_sid
    ORDER BY m.id
    FOR UPDATE OF m
),
fc AS (
    SELECT c.id
    FROM invitation_campaigns c
    WHERE c.id IN (SELECT campaign_id FROM o WHERE o.may_fall_back)
      AND c.channel = 'both'
      AND c.status IN ('sending', 'paused')
    ORDER BY c.id
    FOR NO KEY UPDATE OF c
),
f AS (
    SELECT o.*, (o.may_fall_back AND o.campaign_id IN (SELECT id FROM fc)) AS falls_back
    FROM o
),
u AS (
    UPDATE invitation_messages m SET
        status = CASE WHEN f.falls_back THEN 'pending'
                      ELSE onboardd_merge_status(f.old_status, i.status) END,
        channel = CASE WHEN f.falls_back THEN 'sms' ELSE m.channel END,
        fallback_from = CASE WHEN f.falls_back THEN 'whatsapp' ELSE m.fallback_from END,
        fallback_sid = CASE WHEN f.falls_back THEN m.twilio_message_sid ELSE m.fallback_sid END,
        twilio_message_sid = CASE WHEN f.falls_back THEN NULL ELSE m.twilio_message_sid END,
        queued_at = CASE WHEN f.falls_back THEN NULL ELSE m.queued_at END,
        next_attempt_at = CASE WHEN f.falls_back THEN now() ELSE m.next_attempt_at END,
        claimed_until = CASE WHEN f.falls_back THEN NULL ELSE m.claimed_until END,
        sent_at = CASE WHEN f.falls_back THEN NULL ELSE coalesce(m.sent_at, i.sent_at) END,
        delivered_at = CASE WHEN f.falls_back THEN NULL
                            ELSE coalesce(m.delivered_at, i.delivered_at) END,
        read_at = CASE WHEN f.falls_back THEN NULL ELSE coalesce(m.read_at, i.read_at) END,
        error_code = CASE WHEN f.falls_back THEN i.error_code
                          ELSE coalesce(m.error_code, i.error_code) END,
        error_message = CASE WHEN f.falls_back THEN i.error_message
                             ELSE coalesce(m.error_message, i.error_message) END,
        updated_at = now()
    FROM i
    JOIN f ON f.sid = i.sid
    WHERE m.id = f.id
      AND (f.falls_back
           OR onboardd_merge_status(f.old_status, i.status) IS DISTINCT FROM f.old_status
           OR (m.sent_at IS NULL AND i.sent_at IS NOT NULL)
           OR (m.delivered_at IS NULL AND i.delivered_at IS NOT NULL)
           OR (m.read_at IS NULL AND i.read_at IS NOT NULL)
           OR (m.error_code IS NULL AND i.error_code IS NOT NULL))
    RETURNING m.id, m.campaign_id, f.old_status, f.sid AS old_sid, m.status,
              m.twilio_message_sid AS sid, f.falls_back,
              (m.status IN ('pending', 'sending')
               OR (m.status IN ('queued', 'sent')
                   AND coalesce(m.queued_at, m.updated_at)
                       > now() - make_interval(secs => $9::double precision))) AS keeps_open
),
d AS (
    SELECT campaign_id,
           sum(onboardd_counts_sent(status, sid) - onboardd_counts_sent(old_status, old_sid))
               AS sent,
           sum(onboardd_counts_delivered(status) - onboardd_counts_delivered(old_status))
               AS delivered,
           sum(onboardd_counts_read(status) - onboardd_counts_read(old_status)) AS read,
           sum(onboardd_counts_failed(status) - onboardd_counts_failed(old_status)) AS failed
    FROM u
    GROUP BY campaign_id
),
camp AS (
    UPDATE invitation_campaigns c SET
        messages_sent = c.messages_sent + d.sent,
        messages_delivered = c.messages_delivered + d.delivered,
        messages_read = c.messages_read + d.read,
        messages_failed = c.messages_failed + d.failed,
        updated_at = now()
    FROM d
    WHERE c.id = d.campaign_id
    RETURNING c.id
)
SELECT f.sid, f.campaign_id,
       coalesce(u.status IN ('delivered', 'read', 'failed', 'undelivered')
                OR u.old_status IN ('pending', 'sending'), false) AS settles,
       coalesce(u.keeps_open, false) AS keeps_open,
       coalesce(u.falls_back, false) AS fell_back
FROM f
LEFT JOIN u ON u.id = f.id
UNION ALL
SELECT m.fallback_sid, m.campaign_id, false, false, false
FROM invitation_messages m
JOIN i ON i.sid = m.fallback_sid;

-- name: delivery_keep_orphans
INSERT INTO status_callback_orphans (sid, status, at, error_code, error_message)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::integer[], $5::text[]);

-- name: delivery_complete_campaigns
-- Sending campaigns (of $1, or every one when $1 is NULL) whose messages are all final; an
-- accepted message still queued/sent counts as final once the delivery wait ($2 s) is over.
-- A paused campaign stays paused. The unfinished statuses are listed on their own, so one
-- range of (campaign_id, status) holds every message that may keep the campaign open: the
-- recorder asks after every flush, and without that range the planner was seen reading all
-- 20k messages of a campaign near its end (5 ms a flush instead of 0.05).
UPDATE invitation_campaigns c SET
    status = 'completed',
    completed_at = now(),
    updated_at = now()
WHERE c.status = 'sending'
  AND ($1::text[] IS NULL OR c.id = ANY($1::text[]))
  AND NOT EXISTS (
      SELECT 1 FROM invitation_messages m
      WHERE m.campaign_id = c.id
        AND m.status IN ('pending', 'sending', 'queued', 'sent')
        AND (m.status IN ('pending', 'sending')
             OR coalesce(m.queued_at, m.updated_at)
                > now() - make_interval(secs => $2::double precision)))
  AND EXISTS (SELECT 1 FROM invitation_messages m WHERE m.campaign_id = c.id)
RETURNING c.id;

-- name: delivery_recount
-- The campaign counters next to a recount from the message rows: they are always equal.
SELECT c.id,
       c.messages_sent, c.messages_delivered, c.messages_read, c.messages_failed,
       c.messages_skipped,
       coalesce(sum(onboardd_counts_sent(m.status, m.twilio_message_sid)), 0)::int
           AS recount_sent,
       coalesce(sum(onboardd_counts_delivered(m.status)), 0)::int AS recount_delivered,
       coalesce(sum(onboardd_counts_read(m.status)), 0)::int AS recount_read,
       coalesce(sum(onboardd_counts_failed(m.status)), 0)::int AS recount_failed,
       coalesce(sum(onboardd_counts_skipped(m.status)), 0)::int AS recount_skipped
FROM invitation_campaigns c
LEFT JOIN invitation_messages m ON m.campaign_id = c.id
WHERE c.id = $1
GROUP BY c.id;

-- name: delivery_opt_out
-- An inbound STOP: record the opt-out, mark every salon's record of the number opted out,
-- and skip its pending messages of sending campaigns (counters in the same statement).
WITH opt AS (
    INSERT INTO opt_outs (phone_hash, sender, source, opted_out_at)
    VALUES ($1, $2, $3, now())
    ON CONFLICT (phone_hash, sender) DO UPDATE SET opted_out_at = opt_outs.opted_out_at
    RETURNING phone_hash
),
cust AS (
    UPDATE imported_customers c SET
        status = 'opted_out',
        opted_out_at = coalesce(c.opted_out_at, now()),
        opt_out_reason = 'stop',
        updated_at = now()
    WHERE c.phone_hash = $1 AND c.status <> 'registered'
    RETURNING c.id
),
msg AS (
    UPDATE invitation_messages m SET
        status = 'skipped',
        skip_reason = 'opted_out',
        claimed_until = NULL,
        updated_at = now()
    FROM imported_customers c, invitation_campaigns ic
    WHERE c.phone_hash = $1
      AND m.imported_customer_id = c.id
      AND ic.id = m.campaign_id
      AND ic.status IN ('sending', 'paused', 'scheduled')
      AND m.status = 'pending'
    RETURNING m.campaign_id
),
d AS (
    SELECT campaign_id, count(*)::int AS n FROM msg GROUP BY campaign_id
),
camp AS (
    UPDATE invitation_campaigns ic SET
        messages_skipped = ic.messages_skipped + d.n,
        updated_at = now()
    FROM d
    WHERE ic.id = d.campaign_id
    RETURNING ic.id
)
SELECT (SELECT count(*) FROM cust)::int AS customers,
       (SELECT count(*) FROM msg)::int AS messages,
       coalesce((SELECT array_agg(id) FROM camp), '{}'::varchar[]) AS campaigns;

-- name: delivery_opt_in
-- An inbound START: forget the opt-out for this sender; when no opt-out of the number remains,
-- its records go back to invited (if ever invited) or pending, with consent yes: the customer's
-- own START wins over a no (or a blank) in an imported file. A customer the salon blocked stays
-- opted out: that was the salon's decision, not the customer's.
WITH gone AS (
    DELETE FROM opt_outs WHERE phone_hash = $1 AND (sender = $2 OR sender = '*')
    RETURNING phone_hash
),
cust AS (
    UPDATE imported_customers c SET
        status = CASE WHEN c.invited_at IS NOT NULL THEN 'invited' ELSE 'pending' END,
        opted_out_at = NULL,
        opt_out_reason = NULL,
        consent = 'yes',
        consent_source = 'START',
        updated_at = now()
    WHERE c.phone_hash = $1
      AND c.status = 'opted_out'
      AND c.opt_out_reason IS DISTINCT FROM 'blocked'
      AND NOT EXISTS (SELECT 1 FROM opt_outs o
                      WHERE o.phone_hash = $1 AND o.sender <> $2 AND o.sender <> '*')
    RETURNING c.id
)
SELECT (SELECT count(*) FROM gone)::int AS opt_outs_removed,
       (SELECT count(*) FROM cust)::int AS customers;

-- name: delivery_record_inbound
INSERT INTO inbound_messages (message_sid, phone_hash, sender, keyword)
VALUES ($1, $2, $3, $4)
ON CONFLICT (message_sid) DO NOTHING
RETURNING id;

-- name: delivery_orphans_with_known_sid
-- Orphan callbacks whose SID has since appeared (set by a path other than the recorder).
DELETE FROM status_callback_orphans o
USING invitation_messages m
WHERE m.twilio_message_sid = o.sid OR m.fallback_sid = o.sid
RETURNING o.sid, o.status, o.at, o.error_code, o.error_message;

-- name: delivery_drop_stale_orphans
DELETE FROM status_callback_orphans
WHERE received_at < now() - make_interval(secs => $1::double precision)
RETURNING sid, status;

-- name: delivery_known_sids
-- Also the WhatsApp SIDs of messages that fell back to SMS.
SELECT twilio_message_sid AS sid FROM invitation_messages
WHERE twilio_message_sid = ANY($1::text[])
UNION
SELECT fallback_sid FROM invitation_messages
WHERE fallback_sid = ANY($1::text[]);

-- name: delivery_park_event
-- A status event the recorder could not apply (see 0008_parked_status_events.sql).
INSERT INTO status_events_parked (kind, message_id, sid, error, payload)
VALUES ($1, $2, $3, $4, $5)
RETURNING id;
