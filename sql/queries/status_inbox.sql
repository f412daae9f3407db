-- The status inbox (0019_status_inbox.sql): the status recorder appends Twilio's status callbacks,
-- the status folder applies them to the messages (with delivery_apply_callbacks) and deletes
-- them in the same transaction.

-- name: status_inbox_put
-- Callbacks in the order they arrived (identity values follow the unnest order).
INSERT INTO status_inbox (sid, status, at, error_code, error_message)
SELECT sid, status, at, error_code, error_message
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::integer[], $5::text[])
    WITH ORDINALITY AS t(sid, status, at, error_code, error_message, n)
ORDER BY n;

-- name: status_inbox_fold_lock
-- One folder at a time, cluster-wide, until its transaction ends. An erase takes it too, before
-- it locks its customer's messages, so it never waits for a fold holding a message it locked.
SELECT pg_advisory_xact_lock(1869504102, 0);

-- name: status_inbox_take
-- The oldest $1 callbacks that are not held, or held but whose SID a message now carries or
-- whose hold of $2 s ran out, deleted (the caller applies them in the same transaction,
-- under status_inbox_fold_lock, and puts back those it holds again: status_inbox_hold), and how
-- many rows stay behind, held or not.
WITH picked AS (
    SELECT id FROM (
        (SELECT id FROM status_inbox WHERE held_since IS NULL ORDER BY id LIMIT $1)
        UNION ALL
        (SELECT i.id FROM status_inbox i
         WHERE i.held_since IS NOT NULL
           AND (i.held_since <= now() - make_interval(secs => $2::double precision)
                OR EXISTS (SELECT 1 FROM invitation_messages m
                           WHERE m.twilio_message_sid = i.sid)
                OR EXISTS (SELECT 1 FROM invitation_messages m WHERE m.fallback_sid = i.sid))
         ORDER BY i.id LIMIT $1)
    ) AS ready
    ORDER BY id
    LIMIT $1
),
taken AS (
    -- By primary key (an IN (subquery) here was planned as a scan of the whole inbox).
    DELETE FROM status_inbox
    WHERE id = ANY (ARRAY(SELECT id FROM picked))
    RETURNING id, sid, status, at, error_code, error_message, held_since
)
SELECT t.*,
       -- Counted in the statement's snapshot (before the delete). A fold of fewer than $1 rows
       -- took every row not held: only held ones stay, counted on their index; only a full
       -- fold counts the whole inbox (a CASE branch's subquery runs only when it is taken).
       CASE WHEN (SELECT count(*) FROM taken) < $1
            THEN (SELECT count(*) FROM status_inbox WHERE held_since IS NOT NULL)
                 - (SELECT count(*) FROM taken WHERE held_since IS NOT NULL)
            ELSE (SELECT count(*) FROM status_inbox) - (SELECT count(*) FROM taken)
       END AS left_behind,
       -- An earlier callback of its SID stays held (its SID was unknown as this statement
       -- began): this one waits for it, so callbacks are applied in inbox order.
       (t.held_since IS NULL
        AND EXISTS (SELECT 1 FROM status_inbox h
                    WHERE h.held_since IS NOT NULL AND h.sid = t.sid AND h.id < t.id
                      AND NOT EXISTS (SELECT 1 FROM picked p WHERE p.id = h.id)))
           AS behind_held
FROM taken t
ORDER BY t.id;

-- name: status_inbox_hold
-- Put back taken callbacks whose SID no message carries yet, with their id (their place in
-- the inbox order) and the time they were first held (now, for those held the first time).
INSERT INTO status_inbox (id, sid, status, at, error_code, error_message, held_since)
OVERRIDING SYSTEM VALUE
SELECT id, sid, status, at, error_code, error_message, coalesce(held_since, now())
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::integer[], $6::text[],
            $7::timestamptz[])
    AS t(id, sid, status, at, error_code, error_message, held_since);

-- name: status_inbox_held
-- Callbacks held for an unknown SID.
SELECT count(*) FROM status_inbox WHERE held_since IS NOT NULL;

-- name: status_inbox_depth
SELECT count(*) AS depth, min(at) AS oldest FROM status_inbox;

-- name: status_inbox_forget_customer
-- An erase (under status_inbox_fold_lock): the callbacks still waiting for the messages of
-- customer $1 of salon $2, which are about to be deleted.
DELETE FROM status_inbox i
USING invitation_messages m
WHERE m.imported_customer_id = $1 AND m.salon_id = $2
  AND (i.sid = m.twilio_message_sid OR i.sid = m.fallback_sid);
