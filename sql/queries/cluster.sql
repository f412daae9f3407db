-- Instances and sender ownership (onboardd.cluster.membership). Liveness is a session-level
-- advisory lock (class 1869504100, the instance id) held on one connection per instance;
-- onboardd_live_instances() (migration 0013) reads pg_locks. Sender ownership is a second
-- session-level lock (class 1869504101, a hash of channel:sender) on the same connection, so
-- both end together when the session does.

-- name: cluster_join
-- A new instance id, locked for this session (false: the id, after the sequence cycled, is
-- still held by a live instance: take the next one).
WITH id AS (SELECT nextval('onboardd_instance_seq')::integer AS id)
SELECT id.id, pg_try_advisory_lock(1869504100, id.id) AS locked FROM id;

-- name: cluster_register
INSERT INTO onboardd_instances (id, host, pid) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = now(),
                               last_seen_at = now();

-- name: cluster_heartbeat
-- Every heartbeat: prove the session still answers, note it for operators, and count the live
-- instances (for the fair share of senders).
WITH seen AS (
    UPDATE onboardd_instances SET last_seen_at = now() WHERE id = $1 RETURNING id
)
SELECT (SELECT count(*) FROM onboardd_live_instances())::integer AS live,
       EXISTS (SELECT 1 FROM onboardd_live_instances() AS l WHERE l = $1) AS holding,
       (SELECT count(*) FROM seen)::integer AS seen;

-- name: cluster_forget_gone
-- Operator rows of instances that are gone and have not been seen for a day.
DELETE FROM onboardd_instances
WHERE last_seen_at < now() - interval '1 day'
  AND id NOT IN (SELECT onboardd_live_instances());

-- name: cluster_take_sender
SELECT pg_try_advisory_lock(1869504101, $1::integer) AS taken;

-- name: cluster_note_sender
-- The lock on sender $1 was just taken by instance $2: note it, and return how many seconds to
-- wait before the first request ($3: the wait after a vanished owner's last heartbeat, $4: after
-- a clean release).
WITH prev AS (
    SELECT s.owner, s.released_at, i.last_seen_at
    FROM onboardd_senders s
    LEFT JOIN onboardd_instances i ON i.id = s.owner
    WHERE s.key = $1
    FOR UPDATE OF s
), noted AS (
    INSERT INTO onboardd_senders AS s (key, owner, taken_at) VALUES ($1, $2, now())
    ON CONFLICT (key) DO UPDATE SET owner = $2, taken_at = now()
    RETURNING 1
)
SELECT coalesce((
    SELECT greatest(0, extract(epoch FROM
               CASE WHEN p.owner IS NULL THEN p.released_at + make_interval(secs => $4)
                    ELSE coalesce(p.last_seen_at, now()) + make_interval(secs => $3) END
               - now()))
    FROM prev p), 0)::float8 AS wait_s,
    (SELECT count(*) FROM noted)::integer AS noted;

-- name: cluster_give_sender
-- Instance $2 lets go of sender $1 (it stopped starting requests on it before).
WITH noted AS (
    UPDATE onboardd_senders SET owner = NULL, released_at = now()
    WHERE key = $3 AND owner = $2
    RETURNING 1
)
SELECT pg_advisory_unlock(1869504101, $1::integer) AS given,
       (SELECT count(*) FROM noted)::integer AS noted;
