-- Welcome offers (spec §5, §7.3-7.4): admin CRUD, grants and redemptions, registration matching,
-- expiry sweeps. Offers are always read with their salon id (tenant rule) on admin paths.

-- name: wo_offer_create
INSERT INTO welcome_offers (salon_id, name, discount_type, discount_value, max_discount_in_paisa,
                            minimum_purchase_in_paisa, validity_days, usage_limit, is_active)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING *;

-- name: wo_offer_list
SELECT * FROM welcome_offers
WHERE salon_id = $1 AND ($2::boolean IS NULL OR (is_active = 1) = $2)
ORDER BY created_at DESC, id DESC;

-- name: wo_offer_get
SELECT * FROM welcome_offers WHERE id = $1 AND salon_id = $2;

-- name: wo_offer_get_for_update
-- An edit reads, merges and writes under this row lock, so concurrent edits apply in turn.
SELECT * FROM welcome_offers WHERE id = $1 AND salon_id = $2 FOR UPDATE;

-- name: wo_offer_get_any
SELECT * FROM welcome_offers WHERE id = $1;

-- name: wo_offer_get_many
SELECT * FROM welcome_offers WHERE id = ANY($1::varchar[]);

-- name: wo_offer_update
UPDATE welcome_offers
SET name = $3, discount_type = $4, discount_value = $5, max_discount_in_paisa = $6,
    minimum_purchase_in_paisa = $7, validity_days = $8, usage_limit = $9, is_active = $10,
    updated_at = now()
WHERE id = $1 AND salon_id = $2
RETURNING *;

-- name: wo_offer_deactivate
UPDATE welcome_offers SET is_active = 0, updated_at = now()
WHERE id = $1 AND salon_id = $2
RETURNING *;

-- name: wo_offer_redemptions_page
-- An active grant past its expiry is reported (and filtered) as expired before the sweep runs.
WITH r AS (
    SELECT id, welcome_offer_id, user_id, imported_customer_id, booking_id,
           discount_applied_in_paisa, expires_at, redeemed_at, created_at,
           CASE WHEN status = 'active' AND expires_at < now() THEN 'expired' ELSE status END
               AS status
    FROM welcome_offer_redemptions
    WHERE welcome_offer_id = $1
)
SELECT *, count(*) OVER () AS total
FROM r
WHERE $2::text IS NULL OR status = $2
ORDER BY created_at DESC, id
LIMIT $3 OFFSET $4;

-- name: wo_offer_redemptions_count
SELECT count(*) FROM welcome_offer_redemptions
WHERE welcome_offer_id = $1
  AND ($2::text IS NULL
       OR (CASE WHEN status = 'active' AND expires_at < now() THEN 'expired' ELSE status END) = $2);

-- Registration matching ---------------------------------------------------------------------

-- name: wo_match_claim_events
-- Each daemon takes a disjoint batch; the row locks last until the batch's transaction ends.
SELECT e.id, e.user_id, u.phone, e.created_at
FROM registration_events e
LEFT JOIN users u ON u.id = e.user_id
WHERE e.processed_at IS NULL AND (e.claimed_until IS NULL OR e.claimed_until <= now())
ORDER BY e.id
LIMIT $1
FOR UPDATE OF e SKIP LOCKED;

-- name: wo_match_apply
-- Candidates ($1..$4, one row per event: the hash of the user's E.164 number) are linked to
-- every salon's imported record with that hash, unless the record is linked to someone else or
-- the user already holds another record of that salon; the assigned offer is granted, and
-- every event of the batch ($5) is marked processed: one statement, one transaction.
WITH cand AS (
    SELECT * FROM unnest($1::bigint[], $2::varchar[], $3::bytea[], $4::timestamptz[])
        AS c (event_id, user_id, phone_hash, registered_at)
), per_salon AS (
    -- One record per user and salon: the one of the user's latest phone in the batch.
    SELECT DISTINCT ON (ic.salon_id, c.user_id)
           ic.id AS customer_id, c.user_id, c.event_id, c.registered_at
    FROM cand c
    JOIN imported_customers ic ON ic.phone_hash = c.phone_hash
    WHERE (ic.linked_user_id IS NULL OR ic.linked_user_id = c.user_id)
      AND NOT EXISTS (SELECT 1 FROM imported_customers o
                      WHERE o.salon_id = ic.salon_id AND o.linked_user_id = c.user_id
                        AND o.id <> ic.id)
    ORDER BY ic.salon_id, c.user_id, c.event_id DESC
), matched AS (
    SELECT DISTINCT ON (customer_id) * FROM per_salon ORDER BY customer_id, event_id
), linked AS (
    UPDATE imported_customers ic
    SET status = 'registered',
        registered_at = COALESCE(ic.registered_at, m.registered_at),
        linked_user_id = m.user_id,
        updated_at = now()
    FROM matched m
    WHERE ic.id = m.customer_id
      AND (ic.linked_user_id IS NULL OR ic.linked_user_id = m.user_id)
    RETURNING ic.id, ic.salon_id, ic.last_campaign_id, ic.registered_at, m.user_id, m.event_id
), assigned AS (
    SELECT DISTINCT ON (o.id, l.user_id)
           o.id AS offer_id, o.validity_days, l.user_id, l.id AS customer_id, l.registered_at
    FROM linked l
    JOIN welcome_offers o ON o.id = onboardd_assigned_offer(l.salon_id, l.last_campaign_id)
    ORDER BY o.id, l.user_id, l.id
), granted AS (
    INSERT INTO welcome_offer_redemptions (welcome_offer_id, user_id, imported_customer_id,
                                           discount_applied_in_paisa, expires_at, status)
    SELECT a.offer_id, a.user_id, a.customer_id, 0,
           a.registered_at + make_interval(days => a.validity_days), 'active'
    FROM assigned a
    WHERE NOT EXISTS (SELECT 1 FROM welcome_offer_redemptions r
                      WHERE r.welcome_offer_id = a.offer_id AND r.user_id = a.user_id)
    ON CONFLICT (welcome_offer_id, user_id) WHERE booking_id IS NULL DO NOTHING
    RETURNING id
), done AS (
    UPDATE registration_events e
    SET processed_at = now(), claimed_until = NULL, attempts = e.attempts + 1, last_error = NULL,
        matched_count = (SELECT count(*) FROM linked l WHERE l.event_id = e.id)
    WHERE e.id = ANY($5::bigint[])
    RETURNING e.id
)
SELECT (SELECT count(*) FROM linked) AS linked,
       (SELECT count(*) FROM granted) AS granted,
       (SELECT count(*) FROM done) AS processed;

-- name: wo_match_defer_event
-- Exponential backoff from $3 seconds, at most $4; returns the delay chosen.
UPDATE registration_events
SET attempts = attempts + 1, last_error = $2,
    claimed_until = now() + make_interval(
        secs => least($3::double precision * power(2, attempts), $4::double precision))
WHERE id = $1
RETURNING least($3::double precision * power(2, attempts - 1), $4::double precision);

-- Mobile: check, claim, validate, redeem -----------------------------------------------------

-- name: wo_mobile_user_phone
SELECT phone FROM users WHERE id = $1;

-- name: wo_mobile_customers_by_hash
-- Best match first: most recently invited, else most recently imported.
SELECT ic.id, ic.salon_id, s.name AS salon_name, s.country, ic.status, ic.offer_code,
       ic.linked_user_id, onboardd_assigned_offer(ic.salon_id, ic.last_campaign_id) AS offer_id
FROM imported_customers ic
JOIN salons s ON s.id = ic.salon_id
WHERE ic.phone_hash = $1
ORDER BY COALESCE(ic.last_invited_at, ic.invited_at) DESC NULLS LAST, ic.created_at DESC, ic.id;

-- name: wo_claim_customer_by_code
-- $1: the readings of a typed code (onboardd.domain.codes.code_readings), at most two.
SELECT ic.id, ic.salon_id, ic.linked_user_id,
       onboardd_assigned_offer(ic.salon_id, ic.last_campaign_id) AS offer_id
FROM imported_customers ic
WHERE ic.offer_code = ANY($1::varchar[])
ORDER BY ic.offer_code
LIMIT 1
FOR UPDATE;

-- name: wo_claim_customer_for_salon
-- The caller's record in a salon: already linked to them, else unlinked with their phone's hash.
SELECT ic.id, ic.salon_id, ic.linked_user_id,
       onboardd_assigned_offer(ic.salon_id, ic.last_campaign_id) AS offer_id
FROM imported_customers ic
WHERE ic.salon_id = $1
  AND (ic.linked_user_id = $2 OR (ic.linked_user_id IS NULL AND ic.phone_hash = ANY($3::bytea[])))
ORDER BY (ic.linked_user_id IS NOT NULL) DESC, ic.id
LIMIT 1
FOR UPDATE;

-- name: wo_claim_holds_other
-- Whether the user holds another record of the salon than $3: linked to them, or not linked
-- to anyone and carrying their number's hash ($4, NULL when they have none).
SELECT EXISTS (
    SELECT 1 FROM imported_customers
    WHERE salon_id = $1 AND id <> $3
      AND (linked_user_id = $2 OR (linked_user_id IS NULL AND phone_hash = $4::bytea)));

-- name: wo_claim_link_customer
-- Never re-links a record linked to someone else (the caller holds its row lock).
UPDATE imported_customers
SET status = 'registered', registered_at = COALESCE(registered_at, now()), linked_user_id = $2,
    updated_at = now()
WHERE id = $1 AND (linked_user_id IS NULL OR linked_user_id = $2)
RETURNING registered_at;

-- name: wo_claim_held_offers
SELECT DISTINCT r.welcome_offer_id
FROM welcome_offer_redemptions r
JOIN welcome_offers w ON w.id = r.welcome_offer_id
WHERE r.user_id = $1 AND w.salon_id = $2;

-- name: wo_grant_insert
INSERT INTO welcome_offer_redemptions (welcome_offer_id, user_id, imported_customer_id,
                                       discount_applied_in_paisa, expires_at, status)
SELECT $1::varchar, $2::varchar, $3::varchar, 0,
       $4::timestamptz + make_interval(days => $5::integer), 'active'
WHERE NOT EXISTS (SELECT 1 FROM welcome_offer_redemptions r
                  WHERE r.welcome_offer_id = $1::varchar AND r.user_id = $2::varchar)
ON CONFLICT (welcome_offer_id, user_id) WHERE booking_id IS NULL DO NOTHING
RETURNING *;

-- name: wo_grant_for_user
-- The grant is a user's first row for an offer; later uses copy its expiry.
SELECT * FROM welcome_offer_redemptions
WHERE welcome_offer_id = $1 AND user_id = $2
ORDER BY created_at, id
LIMIT 1;

-- name: wo_grant_lock
SELECT * FROM welcome_offer_redemptions
WHERE welcome_offer_id = $1 AND user_id = $2
ORDER BY created_at, id
LIMIT 1
FOR UPDATE;

-- name: wo_redemption_used_count
SELECT count(*) FROM welcome_offer_redemptions
WHERE welcome_offer_id = $1 AND user_id = $2 AND status = 'redeemed';

-- name: wo_redemption_by_booking
SELECT * FROM welcome_offer_redemptions WHERE welcome_offer_id = $1 AND booking_id = $2;

-- name: wo_redemption_use_grant
UPDATE welcome_offer_redemptions
SET booking_id = $2, discount_applied_in_paisa = $3, redeemed_at = now(), status = 'redeemed'
WHERE id = $1
RETURNING *;

-- name: wo_redemption_use_again
INSERT INTO welcome_offer_redemptions (welcome_offer_id, user_id, imported_customer_id, booking_id,
                                       discount_applied_in_paisa, expires_at, redeemed_at, status)
VALUES ($1, $2, $3, $4, $5, $6, now(), 'redeemed')
RETURNING *;

-- name: wo_offer_count_redemption
UPDATE welcome_offers SET total_redemptions = total_redemptions + 1 WHERE id = $1;

-- Expiry sweeps (scheduler) -----------------------------------------------------------------

-- name: wo_expire_redemptions
-- In slices; rows being redeemed right now are skipped and looked at again next pass.
UPDATE welcome_offer_redemptions SET status = 'expired'
WHERE id IN (SELECT id FROM welcome_offer_redemptions
             WHERE status = 'active' AND expires_at < now()
             LIMIT $1
             FOR UPDATE SKIP LOCKED);

-- name: wo_expire_invitations
UPDATE imported_customers SET status = 'expired', updated_at = now()
WHERE id IN (SELECT id FROM imported_customers
             WHERE status = 'invited'
               AND COALESCE(last_invited_at, invited_at)
                   < now() - make_interval(days => $1::integer)
             LIMIT $2
             FOR UPDATE SKIP LOCKED);
