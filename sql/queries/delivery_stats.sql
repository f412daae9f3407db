-- Campaign delivery statistics and the per-customer delivery list, read by the campaign API
-- (onboardd.db.delivery_stats). The counters are kept by delivery.sql's statements.

-- name: delivery_campaign_stats
SELECT c.id, c.salon_id, c.name, c.status, c.channel, c.target_customer_count,
       c.messages_sent, c.messages_delivered, c.messages_read, c.messages_failed,
       c.messages_skipped, c.started_at, c.completed_at, c.paused_at,
       (SELECT count(*) FROM invitation_messages m WHERE m.campaign_id = c.id)::int AS total,
       (SELECT count(*) FROM invitation_messages m
        WHERE m.campaign_id = c.id AND m.status IN ('pending', 'sending'))::int AS pending,
       (SELECT count(*) FROM invitation_messages m
        WHERE m.campaign_id = c.id AND m.status IN ('queued', 'sent'))::int AS awaiting,
       (SELECT count(*) FROM invitation_messages m
        WHERE m.campaign_id = c.id AND m.status NOT IN ('pending', 'sending')
          AND m.queued_at > now() - interval '10 seconds')::int AS accepted_last_10s,
       (SELECT count(DISTINCT m.imported_customer_id) FROM invitation_messages m
        JOIN imported_customers ic ON ic.id = m.imported_customer_id
        WHERE m.campaign_id = c.id AND ic.status = 'opted_out')::int AS opted_out,
       (SELECT count(*) FROM imported_customers ic
        WHERE ic.last_campaign_id = c.id AND ic.registered_at IS NOT NULL)::int
           AS registrations
FROM invitation_campaigns c
WHERE c.id = $1 AND c.salon_id = $2;

-- name: delivery_failed_by_code
SELECT error_code, min(error_message) AS error_message, count(*)::int AS n
FROM invitation_messages
WHERE campaign_id = $1 AND status IN ('failed', 'undelivered')
GROUP BY error_code
ORDER BY n DESC, error_code NULLS LAST;

-- name: delivery_skipped_by_reason
SELECT coalesce(skip_reason, 'unknown') AS reason, count(*)::int AS n
FROM invitation_messages
WHERE campaign_id = $1 AND status = 'skipped'
GROUP BY 1
ORDER BY n DESC, 1;

-- name: delivery_list_messages
-- One page of a campaign's messages ($3 status filter or NULL), oldest first.
SELECT m.id, m.imported_customer_id, c.customer_name, c.normalized_phone_enc, m.channel,
       m.status, m.twilio_message_sid, m.error_code, m.error_message, m.skip_reason,
       m.attempts, m.fallback_from, m.queued_at, m.sent_at, m.delivered_at, m.read_at,
       m.created_at, count(*) OVER ()::int AS total
FROM invitation_messages m
JOIN imported_customers c ON c.id = m.imported_customer_id
WHERE m.campaign_id = $1 AND m.salon_id = $2 AND ($3::text IS NULL OR m.status = $3)
ORDER BY m.created_at, m.id
LIMIT $4 OFFSET $5;

-- name: delivery_count_messages
-- The total for a page past the end, where the window count of delivery_list_messages is absent.
SELECT count(*)::int FROM invitation_messages
WHERE campaign_id = $1 AND salon_id = $2 AND ($3::text IS NULL OR status = $3);

-- name: delivery_campaign_exists
SELECT 1 FROM invitation_campaigns WHERE id = $1 AND salon_id = $2;
