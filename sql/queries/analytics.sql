-- Analytics (onboardd.db.analytics), read from the tables the actors write: exact and fresh.
-- Common parameters: $1 salon, $2 campaign or NULL (the whole salon), $3 and $4 the window's
-- start and end (exclusive). The scope is onboardd_customer_funnel($1, $2) (migrations 0010,
-- 0011): the salon's customers with the funnel facts their rows carry (kept exact by
-- triggers), or the campaign's targets judged by the campaign's messages. Redemptions count
-- when they are of the salon's offers and by a user linked to a customer in scope; a message is
-- sent when Twilio accepted it (queued_at), delivered when delivered or read.
--
-- The reads run with generic plans (a plan per statement, not per salon) and nested loops off
-- (onboardd.db.analytics), and reach every table through an index keyed by salon (migration
-- 0010), so a report costs what the salon holds, whatever the platform holds. The campaign
-- tests are `$2 IS NULL OR ...` filters on rows already narrowed to the salon, and the funnel
-- function runs only the branch of its scope (a one-time filter on $2), so one statement
-- serves both scopes. Except the series: it reads f four times, which a whole salon does best
-- from its index each time and a campaign best once, materialized (one statement for both
-- measured +15 % on a 100k-customer salon's series, or twice the campaign's), so it has a
-- `_salon` and a `_campaign` form of the same definition.
-- A message, its campaign and its customer are in one salon (audience_freeze writes each
-- message with its customer's salon, the campaign's salon): the campaign reads join a salon's
-- messages with that salon's customers.

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
                          AND f.linked_user_id IN (
                              SELECT r.user_id FROM welcome_offer_redemptions r
                              WHERE r.welcome_offer_id = ANY (ARRAY(
                                        SELECT o.id FROM welcome_offers o WHERE o.salon_id = $1))
                                AND r.status = 'redeemed'))::int
           AS redeemers_registered_in_window,
       (avg(extract(epoch FROM f.registered_at - f.invited_at) / 86400)
           FILTER (WHERE f.linked_user_id IS NOT NULL AND f.invited_at IS NOT NULL
                     AND f.registered_at >= f.invited_at))::float8 AS avg_days_to_register,
       (avg(extract(epoch FROM f.first_booking_at - f.registered_at) / 86400)
           FILTER (WHERE f.first_booking_at IS NOT NULL))::float8 AS avg_days_to_first_booking
FROM onboardd_customer_funnel($1, $2::varchar) f;

-- name: analytics_series_salon
-- Events of the window $2..$3 counted per (bucket, kind): $5 'day' or 'week', bucketed in
-- timezone $4 (this form has no campaign parameter). db.analytics.series lays the kinds out
-- per bucket and fills the empty ones. f is expanded at each use, which reads only what that
-- use needs.
WITH f AS NOT MATERIALIZED (
    SELECT f.created_at, f.registered_at, f.linked_user_id, f.first_booking_at
    FROM onboardd_customer_funnel($1, NULL) f
), events AS (
    SELECT date_trunc($5, f.created_at AT TIME ZONE $4)::date AS bucket, 'imported' AS kind,
           count(*) AS n, 0::bigint AS money
    FROM f WHERE f.created_at >= $2 AND f.created_at < $3
    GROUP BY 1
    UNION ALL
    SELECT date_trunc($5, f.registered_at AT TIME ZONE $4)::date, 'registered', count(*), 0
    FROM f WHERE f.linked_user_id IS NOT NULL AND f.registered_at >= $2 AND f.registered_at < $3
    GROUP BY 1
    UNION ALL
    SELECT date_trunc($5, f.first_booking_at AT TIME ZONE $4)::date, 'first_booking', count(*), 0
    FROM f WHERE f.first_booking_at >= $2 AND f.first_booking_at < $3
    GROUP BY 1
    UNION ALL
    SELECT date_trunc($5, m.queued_at AT TIME ZONE $4)::date, 'invited', count(*), 0
    FROM invitation_messages m
    WHERE m.salon_id = $1 AND onboardd_counts_sent(m.status, m.twilio_message_sid) = 1
      AND m.queued_at >= $2 AND m.queued_at < $3
    GROUP BY 1
    UNION ALL
    SELECT date_trunc($5, coalesce(m.delivered_at, m.read_at, m.updated_at) AT TIME ZONE $4)::date,
           'delivered', count(*), 0
    FROM invitation_messages m
    WHERE m.salon_id = $1 AND onboardd_counts_delivered(m.status) = 1
      AND coalesce(m.delivered_at, m.read_at, m.updated_at) >= $2
      AND coalesce(m.delivered_at, m.read_at, m.updated_at) < $3
    GROUP BY 1
    UNION ALL
    SELECT date_trunc($5, r.redeemed_at AT TIME ZONE $4)::date, 'redeemed', count(*),
           sum(r.discount_applied_in_paisa)::bigint
    FROM welcome_offer_redemptions r
    WHERE r.welcome_offer_id = ANY (ARRAY(SELECT o.id FROM welcome_offers o WHERE o.salon_id = $1))
      AND r.status = 'redeemed'
      AND r.redeemed_at >= $2 AND r.redeemed_at < $3
      AND r.user_id IN (SELECT f.linked_user_id FROM f WHERE f.linked_user_id IS NOT NULL)
    GROUP BY 1
)
SELECT bucket, kind, n, money FROM events;

-- name: analytics_series_campaign
-- As analytics_series_salon for campaign $2: $6 'day' or 'week', zone $5.
-- (Here every use of f needs the campaign's messages, so f is computed once.)
WITH f AS MATERIALIZED (
    SELECT f.created_at, f.registered_at, f.linked_user_id, f.first_booking_at
    FROM onboardd_customer_funnel($1, $2::varchar) f
), events AS (
    SELECT date_trunc($6, f.created_at AT TIME ZONE $5)::date AS bucket, 'imported' AS kind,
           count(*) AS n, 0::bigint AS money
    FROM f WHERE f.created_at >= $3 AND f.created_at < $4
    GROUP BY 1
    UNION ALL
    SELECT date_trunc($6, f.registered_at AT TIME ZONE $5)::date, 'registered', count(*), 0
    FROM f WHERE f.linked_user_id IS NOT NULL AND f.registered_at >= $3 AND f.registered_at < $4
    GROUP BY 1
    UNION ALL
    SELECT date_trunc($6, f.first_booking_at AT TIME ZONE $5)::date, 'first_booking', count(*), 0
    FROM f WHERE f.first_booking_at >= $3 AND f.first_booking_at < $4
    GROUP BY 1
    UNION ALL
    SELECT date_trunc($6, m.queued_at AT TIME ZONE $5)::date, 'invited', count(*), 0
    FROM invitation_messages m
    WHERE m.salon_id = $1 AND m.campaign_id = $2::varchar
      AND onboardd_counts_sent(m.status, m.twilio_message_sid) = 1
      AND m.queued_at >= $3 AND m.queued_at < $4
    GROUP BY 1
    UNION ALL
    SELECT date_trunc($6, coalesce(m.delivered_at, m.read_at, m.updated_at) AT TIME ZONE $5)::date,
           'delivered', count(*), 0
    FROM invitation_messages m
    WHERE m.salon_id = $1 AND m.campaign_id = $2::varchar
      AND onboardd_counts_delivered(m.status) = 1
      AND coalesce(m.delivered_at, m.read_at, m.updated_at) >= $3
      AND coalesce(m.delivered_at, m.read_at, m.updated_at) < $4
    GROUP BY 1
    UNION ALL
    SELECT date_trunc($6, r.redeemed_at AT TIME ZONE $5)::date, 'redeemed', count(*),
           sum(r.discount_applied_in_paisa)::bigint
    FROM welcome_offer_redemptions r
    WHERE r.welcome_offer_id = ANY (ARRAY(SELECT o.id FROM welcome_offers o WHERE o.salon_id = $1))
      AND r.status = 'redeemed'
      AND r.redeemed_at >= $3 AND r.redeemed_at < $4
      AND r.user_id IN (SELECT f.linked_user_id FROM f WHERE f.linked_user_id IS NOT NULL)
    GROUP BY 1
)
SELECT bucket, kind, n, money FROM events;

-- name: analytics_campaigns
-- The comparison: campaigns started in the window (only campaign $2 when given), newest first.
-- registered: the campaign's customers who registered at or after its message was accepted;
-- first_bookings: those of them with a booking at the salon at or after registering;
-- redeemed, discount: their redemptions of the salon's offers; booking_value: the amount of
-- their bookings at the salon at or after registering.
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
LEFT JOIN (
    SELECT m.campaign_id, count(*) AS registered,
           count(*) FILTER (WHERE bk.n > 0) AS first_bookings,
           sum(rd.n) AS redeemed, sum(rd.discount) AS discount, sum(bk.value) AS booking_value
    FROM invitation_messages m
    JOIN imported_customers c ON c.id = m.imported_customer_id AND c.salon_id = $1
    LEFT JOIN (
        SELECT r.id, count(*) AS n, sum(b.amount_in_paisa) AS value
        FROM imported_customers r
        JOIN bookings b ON b.salon_id = r.salon_id AND b.user_id = r.linked_user_id
                       AND b.created_at >= r.registered_at
        WHERE r.salon_id = $1 AND r.linked_user_id IS NOT NULL
        GROUP BY r.id
    ) bk ON bk.id = c.id
    LEFT JOIN (
        SELECT r.user_id, count(*) AS n, sum(r.discount_applied_in_paisa) AS discount
        FROM welcome_offer_redemptions r
        WHERE r.welcome_offer_id = ANY (ARRAY(SELECT o.id FROM welcome_offers o
                                              WHERE o.salon_id = $1))
          AND r.status = 'redeemed'
        GROUP BY r.user_id
    ) rd ON rd.user_id = c.linked_user_id
    WHERE m.salon_id = $1 AND ($2::varchar IS NULL OR m.campaign_id = $2::varchar)
      AND m.campaign_id IN (SELECT w.id FROM invitation_campaigns w
                            WHERE w.salon_id = $1 AND w.started_at >= $3 AND w.started_at < $4)
      AND c.linked_user_id IS NOT NULL
      AND m.queued_at IS NOT NULL AND c.registered_at >= m.queued_at
    GROUP BY m.campaign_id
) x ON x.campaign_id = ca.id
WHERE ca.salon_id = $1 AND ($2::varchar IS NULL OR ca.id = $2::varchar)
  AND ca.started_at >= $3 AND ca.started_at < $4
ORDER BY ca.started_at DESC, ca.id;

-- name: analytics_curve
-- Per campaign started in the window (only campaign $2 when given): its delivered customers
-- by the whole day (24 h periods) after their message on which they registered (NULL: not
-- registered, or before the message).
-- Only the registered customers are joined (a hash of the salon's registered customers).
SELECT m.campaign_id,
       CASE WHEN c.registered_at >= m.queued_at
            THEN floor(extract(epoch FROM c.registered_at - m.queued_at) / 86400)::int
       END AS day,
       count(*)::int AS n
FROM invitation_messages m
LEFT JOIN imported_customers c ON c.id = m.imported_customer_id AND c.salon_id = $1
                              AND c.linked_user_id IS NOT NULL
WHERE m.salon_id = $1 AND ($2::varchar IS NULL OR m.campaign_id = $2::varchar)
  AND m.campaign_id IN (SELECT w.id FROM invitation_campaigns w
                        WHERE w.salon_id = $1 AND w.started_at >= $3 AND w.started_at < $4)
  AND onboardd_counts_delivered(m.status) = 1
GROUP BY 1, 2;

-- name: analytics_stage_page
-- Customers at funnel stage $3 and not beyond, oldest import first ($2 campaign or NULL).
-- $4 limit, $5 offset.
SELECT f.customer_id AS id, c.customer_name, c.normalized_phone_enc, c.status,
       f.created_at AS imported_at, f.invited_at, f.last_message_at, f.registered_at,
       f.first_booking_at, count(*) OVER ()::int AS total
FROM onboardd_customer_funnel($1, $2) f
JOIN imported_customers c ON c.id = f.customer_id AND c.salon_id = $1
WHERE f.stage = $3
ORDER BY f.created_at, f.customer_id
LIMIT $4 OFFSET $5;

-- name: analytics_stage_count
SELECT count(*)::int FROM onboardd_customer_funnel($1, $2) f WHERE f.stage = $3;

-- name: analytics_planning
-- Run first in each analytics read transaction (see onboardd.db.analytics.reads): hash and
-- merge joins only, each statement's generic plan from its first execution on, and room to
-- sort a large salon's rows in memory (a generic plan cannot know their number in advance).
SET LOCAL enable_nestloop = off;
SET LOCAL plan_cache_mode = force_generic_plan;
SET LOCAL work_mem = '16MB';

-- name: analytics_export_snapshot
-- The snapshot of this repeatable-read transaction, for a second connection to read the same
-- (onboardd.db.analytics.read_pair).
SELECT pg_export_snapshot();

-- name: analytics_salon_timezone
SELECT timezone FROM salons WHERE id = $1;
