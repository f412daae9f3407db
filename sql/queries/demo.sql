-- `onboardd demo` (onboardd/demo/): what the host app writes (users, bookings), finding the
-- salon, and the timestamp rewrites that place a one-minute run over the past weeks.
--
-- The demo_shift_* queries move by $4 (an interval) every timestamp of one object that was
-- written during the real window $2..$3 of the step that created it, and only those: the
-- intervals between them, and so their order, are kept. The demo_set_* queries give
-- registrations and bookings their story time.

-- name: demo_clock
SELECT clock_timestamp();

-- name: demo_salon_by_id
SELECT id, name, timezone FROM salons WHERE id = $1;

-- name: demo_default_salon
-- The salon named $1 when there is one, else the oldest; `salons` counts them all.
SELECT id, name, timezone, count(*) OVER () AS salons
FROM salons
ORDER BY (name = $1) DESC, created_at, id
LIMIT 1;

-- name: demo_insert_users
-- The host app's registration: one user per phone; the trigger tells the offer-matcher.
INSERT INTO users (phone, name)
SELECT * FROM unnest($1::varchar[], $2::varchar[])
RETURNING id, phone;

-- name: demo_insert_bookings
INSERT INTO bookings (salon_id, user_id, amount_in_paisa)
SELECT $1::varchar, r.user_id, r.amount
FROM unnest($2::varchar[], $3::integer[]) AS r (user_id, amount)
RETURNING id, user_id;

-- name: demo_shift_batch
UPDATE customer_import_batches SET
    created_at = CASE WHEN created_at BETWEEN $2 AND $3 THEN created_at - $4::interval ELSE created_at END,
    confirmed_at = CASE WHEN confirmed_at BETWEEN $2 AND $3 THEN confirmed_at - $4::interval
                        ELSE confirmed_at END,
    completed_at = CASE WHEN completed_at BETWEEN $2 AND $3 THEN completed_at - $4::interval
                        ELSE completed_at END
WHERE id = $1;

-- name: demo_shift_customers
-- Customers of salon $1: imported, invited or otherwise touched during the window.
UPDATE imported_customers SET
    created_at = CASE WHEN created_at BETWEEN $2 AND $3 THEN created_at - $4::interval ELSE created_at END,
    updated_at = CASE WHEN updated_at BETWEEN $2 AND $3 THEN updated_at - $4::interval ELSE updated_at END,
    invited_at = CASE WHEN invited_at BETWEEN $2 AND $3 THEN invited_at - $4::interval ELSE invited_at END,
    last_invited_at = CASE WHEN last_invited_at BETWEEN $2 AND $3 THEN last_invited_at - $4::interval
                           ELSE last_invited_at END,
    opted_out_at = CASE WHEN opted_out_at BETWEEN $2 AND $3 THEN opted_out_at - $4::interval
                        ELSE opted_out_at END
WHERE salon_id = $1
  AND (created_at BETWEEN $2 AND $3 OR updated_at BETWEEN $2 AND $3
       OR invited_at BETWEEN $2 AND $3 OR last_invited_at BETWEEN $2 AND $3
       OR opted_out_at BETWEEN $2 AND $3);

-- name: demo_shift_offer
UPDATE welcome_offers SET
    created_at = CASE WHEN created_at BETWEEN $2 AND $3 THEN created_at - $4::interval ELSE created_at END,
    updated_at = CASE WHEN updated_at BETWEEN $2 AND $3 THEN updated_at - $4::interval ELSE updated_at END
WHERE id = $1;

-- name: demo_shift_campaign
UPDATE invitation_campaigns SET
    created_at = CASE WHEN created_at BETWEEN $2 AND $3 THEN created_at - $4::interval ELSE created_at END,
    updated_at = CASE WHEN updated_at BETWEEN $2 AND $3 THEN updated_at - $4::interval ELSE updated_at END,
    started_at = CASE WHEN started_at BETWEEN $2 AND $3 THEN started_at - $4::interval ELSE started_at END,
    completed_at = CASE WHEN completed_at BETWEEN $2 AND $3 THEN completed_at - $4::interval
                        ELSE completed_at END,
    paused_at = CASE WHEN paused_at BETWEEN $2 AND $3 THEN paused_at - $4::interval ELSE paused_at END
WHERE id = $1;

-- name: demo_shift_messages
UPDATE invitation_messages SET
    created_at = CASE WHEN created_at BETWEEN $2 AND $3 THEN created_at - $4::interval ELSE created_at END,
    updated_at = CASE WHEN updated_at BETWEEN $2 AND $3 THEN updated_at - $4::interval ELSE updated_at END,
    queued_at = CASE WHEN queued_at BETWEEN $2 AND $3 THEN queued_at - $4::interval ELSE queued_at END,
    sent_at = CASE WHEN sent_at BETWEEN $2 AND $3 THEN sent_at - $4::interval ELSE sent_at END,
    delivered_at = CASE WHEN delivered_at BETWEEN $2 AND $3 THEN delivered_at - $4::interval
                        ELSE delivered_at END,
    read_at = CASE WHEN read_at BETWEEN $2 AND $3 THEN read_at - $4::interval ELSE read_at END,
    next_attempt_at = CASE WHEN next_attempt_at BETWEEN $2 AND $3 THEN next_attempt_at - $4::interval
                           ELSE next_attempt_at END,
    attempt_started_at = CASE WHEN attempt_started_at BETWEEN $2 AND $3
                              THEN attempt_started_at - $4::interval ELSE attempt_started_at END
WHERE campaign_id = $1;

-- name: demo_set_grants
-- Before demo_set_registered: the welcome-offer grants of salon $3's customers linked to the
-- users $1 move with their registration to $2 (so expires_at stays validityDays after it).
UPDATE welcome_offer_redemptions w SET
    created_at = w.created_at - (c.registered_at - r.at),
    expires_at = w.expires_at - (c.registered_at - r.at)
FROM unnest($1::varchar[], $2::timestamptz[]) AS r (user_id, at)
JOIN imported_customers c ON c.linked_user_id = r.user_id AND c.salon_id = $3
WHERE w.user_id = r.user_id AND w.imported_customer_id = c.id;

-- name: demo_set_registered
UPDATE imported_customers c SET registered_at = r.at, updated_at = r.at
FROM unnest($1::varchar[], $2::timestamptz[]) AS r (user_id, at)
WHERE c.linked_user_id = r.user_id AND c.salon_id = $3;

-- name: demo_set_users
UPDATE users u SET created_at = r.at
FROM unnest($1::varchar[], $2::timestamptz[]) AS r (user_id, at)
WHERE u.id = r.user_id;

-- name: demo_set_registration_events
UPDATE registration_events e SET
    processed_at = r.at + (e.processed_at - e.created_at),
    created_at = r.at
FROM unnest($1::varchar[], $2::timestamptz[]) AS r (user_id, at)
WHERE e.user_id = r.user_id;

-- name: demo_set_bookings
-- Bookings $1 of salon $3 made at $2; the offer was applied a minute later, at checkout.
WITH r AS (
    SELECT * FROM unnest($1::varchar[], $2::timestamptz[]) AS r (booking_id, at)
), b AS (
    UPDATE bookings b SET created_at = r.at
    FROM r
    WHERE b.id = r.booking_id AND b.salon_id = $3
    RETURNING b.id
)
UPDATE welcome_offer_redemptions w SET redeemed_at = r.at + interval '1 minute'
FROM r, welcome_offers o
WHERE w.booking_id = r.booking_id AND o.id = w.welcome_offer_id AND o.salon_id = $3;
