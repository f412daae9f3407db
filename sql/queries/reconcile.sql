-- Reconciliation's view of invitation messages: expired send leases for the one lease sweep,
-- accepted messages whose final status never arrived.

-- name: reconcile_claim_expired
-- The lease sweep: 'sending' rows that nobody will settle, of one campaign ($3) or every one,
-- or only the given ids ($4), at most $1:
--   * their lease ran out (their dispatcher gave up on them, or holds no liveness lock and
--     claimed them without one), or
--   * their holder is dead: it no longer holds its liveness lock (onboardd_live_instances), and
--     the attempt started more than $5 s ago, so no request of it can still be on its way.
-- A live holder's rows are never taken before their lease runs out (it renews the leases of
-- what it still holds). Taken rows are re-leased for $2 s to this sweeper ($6, the instance)
-- with a new claim token, so that no other sweeper acts on them meanwhile and a late outcome of
-- the cut-off attempt changes nothing. The row's attempt start, sender and the customer's offer
-- code identify what the cut-off attempt may have created at Twilio.
WITH expired AS (
    SELECT id FROM invitation_messages
    WHERE status = 'sending'
      AND (claimed_until < now()
           OR (claimed_by IS NOT NULL
               AND claimed_by NOT IN (SELECT onboardd_live_instances())
               AND attempt_started_at < now() - make_interval(secs => $5::float8)))
      AND ($3::text IS NULL OR campaign_id = $3)
      AND ($4::text[] IS NULL OR id = ANY($4::text[]))
    ORDER BY claimed_until
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE invitation_messages m
    SET claimed_until = now() + make_interval(secs => $2::float8),
        claimed_by = $6::integer,
        claim_token = nextval('onboardd_claim_token_seq'),
        updated_at = now()
    FROM expired
    WHERE m.id = expired.id
    RETURNING m.id, m.campaign_id, m.imported_customer_id, m.channel, m.sender,
              m.attempt_started_at, m.created_at, m.claim_token
)
SELECT l.id, l.campaign_id, l.channel, l.sender, l.claim_token,
       coalesce(l.attempt_started_at, l.created_at) AS attempt_started_at,
       cu.normalized_phone_enc, cu.offer_code
FROM leased l
JOIN imported_customers cu ON cu.id = l.imported_customer_id
ORDER BY l.id;

-- name: reconcile_awaiting
-- Accepted messages (they carry a SID) to look up by SID: queued/sent for longer than the
-- delivery wait ($2 s), of one campaign ($1) or every one, with ids after $5 (a cursor, so
-- that passes go round all of them instead of asking about the same first ones: an SMS whose
-- carrier never reports delivery stays 'sent' for good), at most $3; or, given ids ($4),
-- those of them that carry a SID, whatever their status and age.
SELECT m.id, m.campaign_id, m.channel, m.twilio_message_sid AS sid,
       c.normalized_phone_enc,
       coalesce(m.queued_at, m.attempt_started_at, m.updated_at) AS since
FROM invitation_messages m
JOIN imported_customers c ON c.id = m.imported_customer_id
WHERE m.twilio_message_sid IS NOT NULL
  AND CASE WHEN $4::text[] IS NULL
           THEN ($1::text IS NULL OR m.campaign_id = $1)
                AND ($5::text IS NULL OR m.id > $5)
                AND m.status IN ('queued', 'sent')
                AND coalesce(m.queued_at, m.updated_at)
                    < now() - make_interval(secs => $2::double precision)
           ELSE m.id = ANY($4::text[]) END
ORDER BY m.id
LIMIT $3;
