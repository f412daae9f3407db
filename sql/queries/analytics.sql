-- Analytics (onboardd.db.analytics), read from the tables the actors write: exact and fresh.
-- Common parameters: $1 salon, $2 campaign (NULL: the whole salon), $3 window start,
-- $4 window end (exclusive). The scope is onboardd_customer_funnel($1, $2) (migration 0010):
-- the salon's customers, or the campaign's targets judged by the campaign's messages.
-- Redemptions count when they are of the salon's offers and by a user linked to a customer in
-- scope; a message is sent when Twilio accepted it (queued_at), delivered when delivered or read.

-- name: analytics_customer_counts
-- Funnel stages (as of now) and the customer KPIs. $5 week start, $6 month start.
SELECT count(*)::int AS imported,
       count(*) FILTER (WHERE f.stage >= 1)::int AS invited,
       count(*) FILTER (WHERE f.stage >= 2)::int AS delivered,
       count(*) FILTER (WHERE f.stage >= 3)::int AS registered,
       count(*) FILTER (WHERE f.stage >= 4)::int AS first_booking,
       count(*) FILTER (WHERE f.created_at >= $5)::int AS imported_this_week,
       count(*) FILTER (WHERE f.created_at >= $6)::int AS imported_this_month,
       count(*) FILTER (WHERE f.created_at < $4)::int AS imported_by_end,
       count(*) FILTER (WHERE f.linked_user_id IS NOT NULL
                          AND f.registered_at >= $3 AND f.registered_at < $4)::int
           AS registered_in_window,
       count(*) FILTER (WHERE f.linked_user_id IS NOT NULL
                          AND f.registered_at >= $3 AND f.registered_at < $4
                          AND EXISTS (
                              SELECT 1 FROM welcome_offer_redemptions r
                              JOIN welcome_offers o ON o.id = r.welcome_offer_id
                              WHERE r.user_id = f.linked_user_id AND o.salon_id = $1
                                AND r.status = 'redeemed'))::int
           AS redeemers_registered_in_window,
       (avg(extract(epoch FROM f.registered_at - f.invited_at) / 86400)
           FILTER (WHERE f.linked_user_id IS NOT NULL AND f.invited_at IS NOT NULL
                     AND f.registered_at >= f.invited_at))::float8 AS avg_days_to_register,
       (avg(extract(epoch FROM f.first_booking_at - f.registered_at) / 86400)
           FILTER (WHERE f.first_booking_at IS NOT NULL))::float8 AS avg_days_to_first_booking
FROM onboardd_customer_funnel($1, $2) f;

-- name: analytics_event_counts
-- The windowed message and redemption KPIs.
WITH scope AS (
    SELECT f.linked_user_id FROM onboardd_customer_funnel($1, $2) f
    WHERE f.linked_user_id IS NOT NULL
), messages AS (
    SELECT
        count(*) FILTER (WHERE onboardd_counts_sent(m.status, m.twilio_message_sid) = 1
                           AND m.queued_at >= $3 AND m.queued_at < $4)::int AS sent,
        count(*) FILTER (WHERE onboardd_counts_delivered(m.status) = 1
                           AND coalesce(m.delivered_at, m.read_at, m.updated_at) >= $3
                           AND coalesce(m.delivered_at, m.read_at, m.updated_at) < $4)::int
            AS delivered
    FROM invitation_messages m
    WHERE m.salon_id = $1 AND ($2::varchar IS NULL OR m.campaign_id = $2)
), redemptions AS (
    SELECT count(*)::int AS redeemed,
           coalesce(sum(r.discount_applied_in_paisa), 0)::bigint AS discount
    FROM welcome_offer_redemptions r
    JOIN welcome_offers o ON o.id = r.welcome_offer_id
    WHERE o.salon_id = $1 AND r.status = 'redeemed'
      AND r.redeemed_at >= $3 AND r.redeemed_at < $4
      AND r.user_id IN (SELECT s.linked_user_id FROM scope s)
)
SELECT messages.sent, messages.delivered, redemptions.redeemed, redemptions.discount
FROM messages, redemptions;

-- name: analytics_series
-- One row per bucket from $7 to $8 (dates), $6 'day' or 'week', bucketed in timezone $5.
WITH f AS (
    SELECT * FROM onboardd_customer_funnel($1, $2)
), events AS (
    SELECT f.created_at AS at, 'imported' AS kind, 0::bigint AS money FROM f
    WHERE f.created_at >= $3 AND f.created_at < $4
    UNION ALL
    SELECT f.registered_at, 'registered', 0 FROM f
    WHERE f.linked_user_id IS NOT NULL AND f.registered_at >= $3 AND f.registered_at < $4
    UNION ALL
    SELECT f.first_booking_at, 'first_booking', 0 FROM f
    WHERE f.first_booking_at >= $3 AND f.first_booking_at < $4
    UNION ALL
    SELECT m.queued_at, 'invited', 0 FROM invitation_messages m
    WHERE m.salon_id = $1 AND ($2::varchar IS NULL OR m.campaign_id = $2)
      AND onboardd_counts_sent(m.status, m.twilio_message_sid) = 1
      AND m.queued_at >= $3 AND m.queued_at < $4
    UNION ALL
    SELECT coalesce(m.delivered_at, m.read_at, m.updated_at), 'delivered', 0
    FROM invitation_messages m
    WHERE m.salon_id = $1 AND ($2::varchar IS NULL OR m.campaign_id = $2)
      AND onboardd_counts_delivered(m.status) = 1
      AND coalesce(m.delivered_at, m.read_at, m.updated_at) >= $3
      AND coalesce(m.delivered_at, m.read_at, m.updated_at) < $4
    UNION ALL
    SELECT r.redeemed_at, 'redeemed', r.discount_applied_in_paisa::bigint
    FROM welcome_offer_redemptions r
    JOIN welcome_offers o ON o.id = r.welcome_offer_id
    WHERE o.salon_id = $1 AND r.status = 'redeemed'
      AND r.redeemed_at >= $3 AND r.redeemed_at < $4
      AND r.user_id IN (SELECT f.linked_user_id FROM f WHERE f.linked_user_id IS NOT NULL)
), buckets AS (
    SELECT date_trunc($6, e.at AT TIME ZONE $5)::date AS bucket,
           count(*) FILTER (WHERE e.kind = 'imported')::int AS imported,
           count(*) FILTER (WHERE e.kind = 'invited')::int AS invited,
           count(*) FILTER (WHERE e.kind = 'delivered')::int AS delivered,
           count(*) FILTER (WHERE e.kind = 'registered')::int AS registered,
           count(*) FILTER (WHERE e.kind = 'first_booking')::int AS first_bookings,
           count(*) FILTER (WHERE e.kind = 'redeemed')::int AS redeemed,
           coalesce(sum(e.money), 0)::bigint AS discount
    FROM events e
    GROUP BY 1
)
SELECT d::date AS bucket,
       coalesce(b.imported, 0) AS imported, coalesce(b.invited, 0) AS invited,
       coalesce(b.delivered, 0) AS delivered, coalesce(b.registered, 0) AS registered,
       coalesce(b.first_bookings, 0) AS first_bookings, coalesce(b.redeemed, 0) AS redeemed,
       coalesce(b.discount, 0)::bigint AS discount
FROM generate_series($7::date, $8::date, ('1 ' || $6)::interval) AS d
LEFT JOIN buckets b ON b.bucket = d::date
ORDER BY 1;

-- name: analytics_campaigns
-- The comparison: campaigns started in the window (and only $2 when given), newest first.
-- registered: the campaign's customers who registered at or after its message was accepted.
SELECT ca.id, ca.name, ca.channel, ca.status, ca.started_at,
       ca.target_customer_count AS target, ca.messages_sent AS sent,
       ca.messages_delivered AS delivered, ca.messages_read AS read,
       ca.messages_failed AS failed, ca.messages_skipped AS skipped,
       coalesce(x.registered, 0)::int AS registered,
       coalesce(x.first_bookings, 0)::int AS first_bookings,
       coalesce(x.redeemed, 0)::int AS redeemed,
       coalesce(x.discount, 0)::bigint AS discount,
       coalesce(x.booking_value, 0)::bigint AS booking_value
FROM invitation_campaigns ca
LEFT JOIN LATERAL (
    SELECT count(*) AS registered,
           count(*) FILTER (WHERE bk.n > 0) AS first_bookings,
           sum(rd.n) AS redeemed, sum(rd.discount) AS discount, sum(bk.value) AS booking_value
    FROM invitation_messages m
    JOIN imported_customers c ON c.id = m.imported_customer_id
    CROSS JOIN LATERAL (
        SELECT count(*) AS n, coalesce(sum(b.amount_in_paisa), 0) AS value FROM bookings b
        WHERE b.salon_id = ca.salon_id AND b.user_id = c.linked_user_id
          AND b.created_at >= c.registered_at
    ) bk
    CROSS JOIN LATERAL (
        SELECT count(*) AS n, coalesce(sum(r.discount_applied_in_paisa), 0) AS discount
        FROM welcome_offer_redemptions r
        JOIN welcome_offers o ON o.id = r.welcome_offer_id
        WHERE r.user_id = c.linked_user_id AND o.salon_id = ca.salon_id
          AND r.status = 'redeemed'
    ) rd
    WHERE m.campaign_id = ca.id AND c.linked_user_id IS NOT NULL
      AND m.queued_at IS NOT NULL AND c.registered_at >= m.queued_at
) x ON true
WHERE ca.salon_id = $1 AND ($2::varchar IS NULL OR ca.id = $2)
  AND ca.started_at >= $3 AND ca.started_at < $4
ORDER BY ca.started_at DESC, ca.id;

-- name: analytics_curve
-- Per campaign started in the window: its delivered customers by the whole day (24 h periods)
-- after their message on which they registered (NULL: not registered, or before the message).
SELECT m.campaign_id,
       CASE WHEN c.linked_user_id IS NOT NULL AND c.registered_at >= m.queued_at
            THEN floor(extract(epoch FROM c.registered_at - m.queued_at) / 86400)::int
       END AS day,
       count(*)::int AS n
FROM invitation_campaigns ca
JOIN invitation_messages m ON m.campaign_id = ca.id
JOIN imported_customers c ON c.id = m.imported_customer_id
WHERE ca.salon_id = $1 AND ($2::varchar IS NULL OR ca.id = $2)
  AND ca.started_at >= $3 AND ca.started_at < $4
  AND onboardd_counts_delivered(m.status) = 1
GROUP BY 1, 2;

-- name: analytics_stage_page
-- Customers at funnel stage $3 and not beyond, oldest import first. $4 limit, $5 offset.
SELECT f.customer_id AS id, c.customer_name, c.normalized_phone_enc, c.status,
       f.created_at AS imported_at, f.invited_at, f.last_message_at, f.registered_at,
       f.first_booking_at, count(*) OVER ()::int AS total
FROM onboardd_customer_funnel($1, $2) f
JOIN imported_customers c ON c.id = f.customer_id
WHERE f.stage = $3
ORDER BY f.created_at, f.customer_id
LIMIT $4 OFFSET $5;

-- name: analytics_stage_count
SELECT count(*)::int FROM onboardd_customer_funnel($1, $2) f WHERE f.stage = $3;

-- name: analytics_salon_timezone
SELECT timezone FROM salons WHERE id = $1;
