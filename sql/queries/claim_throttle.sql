-- Claims by offer code: miss counters per user and per client address (migration 0007).
-- A claim charges its keys in one short transaction (ensure, lock, save), then refunds them
-- when the code hit.

-- name: throttle_ensure
-- Keys come sorted ($1, $2), so two claims sharing a key lock its row in the same order.
INSERT INTO offer_claim_throttle (kind, subject)
SELECT k.kind, k.subject FROM unnest($1::varchar[], $2::varchar[]) AS k (kind, subject)
ORDER BY k.kind, k.subject
ON CONFLICT (kind, subject) DO NOTHING;

-- name: throttle_lock
-- The rows of the keys, locked until the transaction ends, with the database's clock (every
-- daemon uses the same one).
SELECT t.kind, t.subject, t.misses, t.window_started_at, t.lockouts, t.locked_until,
       t.last_attempt_at, clock_timestamp() AS now
FROM offer_claim_throttle t
JOIN unnest($1::varchar[], $2::varchar[]) AS k (kind, subject)
  ON k.kind = t.kind AND k.subject = t.subject
ORDER BY t.kind, t.subject
FOR UPDATE OF t;

-- name: throttle_save
UPDATE offer_claim_throttle t
SET misses = s.misses, window_started_at = s.window_started_at, lockouts = s.lockouts,
    locked_until = s.locked_until, last_attempt_at = s.last_attempt_at
FROM unnest($1::varchar[], $2::varchar[], $3::integer[], $4::timestamptz[], $5::integer[],
            $6::timestamptz[], $7::timestamptz[])
    AS s (kind, subject, misses, window_started_at, lockouts, locked_until, last_attempt_at)
WHERE t.kind = s.kind AND t.subject = s.subject;

-- name: throttle_refund
-- The attempt hit: it was not a miss.
UPDATE offer_claim_throttle t
SET misses = greatest(t.misses - 1, 0)
FROM unnest($1::varchar[], $2::varchar[]) AS k (kind, subject)
WHERE t.kind = k.kind AND t.subject = k.subject;

-- name: throttle_prune
-- Keys without an attempt for $1 seconds and not locked, in slices of $2.
DELETE FROM offer_claim_throttle
WHERE (kind, subject) IN (
    SELECT kind, subject FROM offer_claim_throttle
    WHERE (last_attempt_at IS NULL
           OR last_attempt_at < now() - make_interval(secs => $1::double precision))
      AND (locked_until IS NULL OR locked_until < now())
    LIMIT $2
    FOR UPDATE SKIP LOCKED);
