-- Invitation campaigns: CRUD, audience, send start, the dispatcher's claims (the lease sweep's
-- are in reconcile.sql).

-- name: campaign_insert
INSERT INTO invitation_campaigns
    (salon_id, name, channel, message_template, welcome_offer_id, whatsapp_content_sid,
     audience, scheduled_for, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING *;

-- name: campaign_list
SELECT * FROM invitation_campaigns
WHERE salon_id = $1 AND ($2::text IS NULL OR status = $2)
ORDER BY created_at DESC, id
LIMIT $3 OFFSET $4;

-- name: campaign_count
SELECT count(*) FROM invitation_campaigns
WHERE salon_id = $1 AND ($2::text IS NULL OR status = $2);

-- name: campaign_get
SELECT * FROM invitation_campaigns WHERE id = $1 AND salon_id = $2;

-- name: campaign_lock
SELECT * FROM invitation_campaigns WHERE id = $1 AND salon_id = $2 FOR UPDATE;

-- name: campaign_update
UPDATE invitation_campaigns
SET name = $3, channel = $4, message_template = $5, welcome_offer_id = $6,
    whatsapp_content_sid = $7, audience = $8, scheduled_for = $9,
    status = CASE WHEN status = 'scheduled' AND $9::timestamptz IS NULL THEN 'draft'
                  ELSE status END,
    updated_at = now()
WHERE id = $1 AND salon_id = $2 AND status IN ('draft', 'scheduled')
RETURNING *;

-- name: campaign_delete_draft
DELETE FROM invitation_campaigns WHERE id = $1 AND salon_id = $2 AND status = 'draft'
RETURNING id;

-- name: campaign_schedule
UPDATE invitation_campaigns
SET status = 'scheduled', scheduled_for = $3, updated_at = now()
WHERE id = $1 AND salon_id = $2 AND status IN ('draft', 'scheduled')
RETURNING *;

-- name: campaign_set_sending
-- The partial unique index invitation_campaigns_one_sending_per_salon refuses a second one.
UPDATE invitation_campaigns
SET status = 'sending', started_at = coalesce(started_at, now()), paused_at = NULL,
    updated_at = now()
WHERE id = $1 AND salon_id = $2
RETURNING *;

-- name: campaign_set_target
UPDATE invitation_campaigns SET target_customer_count = $2, updated_at = now()
WHERE id = $1
RETURNING *;

-- name: campaign_pause
UPDATE invitation_campaigns SET status = 'paused', paused_at = now(), updated_at = now()
WHERE id = $1 AND salon_id = $2 AND status = 'sending'
RETURNING *;

-- name: campaign_resume
UPDATE invitation_campaigns SET status = 'sending', paused_at = NULL, updated_at = now()
WHERE id = $1 AND salon_id = $2 AND status = 'paused'
RETURNING *;

-- name: campaigns_due
SELECT id, salon_id FROM invitation_campaigns
WHERE status = 'scheduled' AND scheduled_for <= now()
ORDER BY scheduled_for
LIMIT $1;

-- name: campaign_unschedule_empty
UPDATE invitation_campaigns SET status = 'draft', updated_at = now()
WHERE id = $1 AND status = 'scheduled';

-- name: campaigns_sending_ids
SELECT id FROM invitation_campaigns WHERE status = 'sending';

-- name: salon_get
SELECT id, name, country, app_download_link FROM salons WHERE id = $1;

-- Audience: $1 salon, $2 statuses, $3 import batch ids (NULL: any), $4 imported after (NULL: any),
-- $5 campaign that targeted them, $6 funnel stage index, $7 min days since invite (NULL: any).

-- name: audience_count
SELECT count(*) FROM onboardd_audience($1, $2, $3, $4, $5, $6, $7) c;

-- name: audience_sample
SELECT c.id, c.customer_name, c.normalized_phone_enc, c.status, c.import_batch_id,
       c.offer_code, c.download_token
FROM onboardd_audience($1, $2, $3, $4, $5, $6, $7) c
ORDER BY c.created_at, c.id
LIMIT $8;

-- name: campaign_import_batches
-- The batches an audience may name (the builder's filter): those that imported customers.
SELECT id, file_name, created_at, successful_imports FROM customer_import_batches
WHERE salon_id = $1 AND status IN ('processing', 'completed')
ORDER BY created_at DESC, id
LIMIT $2;

-- name: customer_for_preview
SELECT c.id, c.customer_name, c.normalized_phone_enc, c.status, c.import_batch_id,
       c.offer_code, c.download_token
FROM imported_customers c WHERE c.id = $1 AND c.salon_id = $2;

-- name: audience_freeze
-- Send start: one message row per targeted customer ($8 campaign, $9 first channel).
WITH frozen AS (
    INSERT INTO invitation_messages (campaign_id, imported_customer_id, channel, salon_id)
    SELECT $8, c.id, $9, c.salon_id
    FROM onboardd_audience($1, $2, $3, $4, $5, $6, $7) c
    ON CONFLICT (campaign_id, imported_customer_id) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM frozen;

-- name: campaign_message_count
SELECT count(*) FROM invitation_messages WHERE campaign_id = $1;

-- name: customers_lacking_codes
SELECT c.id FROM invitation_messages m
JOIN imported_customers c ON c.id = m.imported_customer_id
WHERE m.campaign_id = $1 AND (c.offer_code IS NULL OR c.download_token IS NULL);

-- name: customers_assign_codes
-- Candidates already taken are left out; the caller draws again for those customers.
UPDATE imported_customers c
SET offer_code = coalesce(c.offer_code, u.code),
    download_token = coalesce(c.download_token, u.token),
    updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[]) AS u (id, code, token)
WHERE c.id = u.id
  AND NOT EXISTS (SELECT 1 FROM imported_customers x WHERE x.offer_code = u.code)
  AND NOT EXISTS (SELECT 1 FROM imported_customers y WHERE y.download_token = u.token);

-- name: messages_claim
-- $1 channel, $2 how many, $3 lease seconds, $4 whatsapp sender, $5 sms sender,
-- $6 resend window hours, $7 bare whatsapp sender number, $8 the claiming instance,
-- $9 / $10 the default sending window (seconds after local midnight), $11 the zone an unknown
-- salons.timezone is read in.
-- An equal share per sending campaign (fairness between salons), locked with SKIP LOCKED. Each
-- row gets a new claim_token: outcomes and hand-backs name it, so they change nothing once the
-- row was taken over (see 0013_instances.sql). Quiet hours: a campaign whose salon is outside
-- its sending window (0017_sending_window.sql) is not claimed from at all; its messages stay
-- pending until the window opens. Each row carries its window, so that the dispatcher does
-- not start a buffered message after the window closed.
WITH active AS (
    SELECT c.id, w.start_s, w.end_s, s.timezone
    FROM invitation_campaigns c
    JOIN salons s ON s.id = c.salon_id
    LEFT JOIN onboardd_salon_settings st ON st.salon_id = c.salon_id
    CROSS JOIN LATERAL (
        SELECT coalesce(st.sending_window_start_s, $9::integer) AS start_s,
               coalesce(st.sending_window_end_s, $10::integer) AS end_s
    ) w
    WHERE c.status = 'sending'
      AND onboardd_sending_open(s.timezone, w.start_s, w.end_s, $11::text, now())
), share AS (
    SELECT greatest(1, ceil($2::float8 / greatest(count(*), 1)))::int AS n FROM active
), picked AS (
    SELECT p.id
    FROM active a
    CROSS JOIN share s
    CROSS JOIN LATERAL (
        SELECT m.id FROM invitation_messages m
        WHERE m.campaign_id = a.id AND m.status = 'pending' AND m.channel = $1
          AND m.next_attempt_at <= now()
        ORDER BY m.next_attempt_at, m.id
        LIMIT s.n
        FOR UPDATE SKIP LOCKED
    ) p
    LIMIT $2
), claimed AS (
    UPDATE invitation_messages m
    SET status = 'sending',
        claimed_until = now() + make_interval(secs => $3::float8),
        claimed_by = $8::integer,
        claim_token = nextval('onboardd_claim_token_seq'),
        attempt_started_at = now(),
        sender = CASE m.channel WHEN 'whatsapp' THEN $4::text ELSE $5::text END,
        updated_at = now()
    FROM picked
    WHERE m.id = picked.id
    RETURNING m.id, m.campaign_id, m.imported_customer_id, m.channel, m.attempts, m.sender,
              m.attempt_started_at, m.claim_token
)
SELECT cl.id, cl.campaign_id, cl.channel, cl.attempts, cl.sender, cl.attempt_started_at,
       cl.claim_token,
       cu.customer_name, cu.normalized_phone_enc, cu.offer_code, cu.download_token,
       c.salon_id, c.channel AS campaign_channel, c.message_template, c.whatsapp_content_sid,
       s.name AS salon_name, s.app_download_link,
       o.discount_type, o.discount_value, o.validity_days,
       EXISTS (
           SELECT 1 FROM opt_outs oo
           WHERE oo.phone_hash = cu.phone_hash
             AND oo.sender IN (cl.sender, '*',
                               CASE cl.channel WHEN 'whatsapp' THEN $7::text ELSE cl.sender END)
       ) AS opted_out,
       (
           (cu.last_invited_at > now() - make_interval(secs => $6::float8 * 3600)
            AND cu.last_campaign_id IS DISTINCT FROM cl.campaign_id)
           OR EXISTS (
               SELECT 1 FROM invitation_messages m2
               WHERE m2.imported_customer_id = cl.imported_customer_id
                 AND m2.campaign_id <> cl.campaign_id
                 AND m2.twilio_message_sid IS NOT NULL
                 AND coalesce(m2.queued_at, m2.sent_at, m2.attempt_started_at)
                     > now() - make_interval(secs => $6::float8 * 3600))
       ) AS recently_invited,
       cu.status = 'opted_out' AS customer_opted_out, cu.name_from_organisation,
       a.start_s AS window_start_s, a.end_s AS window_end_s, a.timezone AS window_timezone
FROM claimed cl
JOIN active a ON a.id = cl.campaign_id
JOIN invitation_campaigns c ON c.id = cl.campaign_id
JOIN imported_customers cu ON cu.id = cl.imported_customer_id
JOIN salons s ON s.id = c.salon_id
LEFT JOIN welcome_offers o ON o.id = c.welcome_offer_id;

-- name: messages_release
-- Hand claimed messages back unsent ($1 ids, $2 their claim tokens, $3 not before). attempts
-- counts requests made and is kept by the status recorder, so it is not touched here. A row
-- taken over meanwhile (another token) is not touched.
UPDATE invitation_messages m
SET status = 'pending', claimed_until = NULL, claimed_by = NULL, claim_token = NULL,
    next_attempt_at = greatest(now(), $3::timestamptz), updated_at = now()
FROM unnest($1::text[], $2::bigint[]) AS r (id, token)
WHERE m.id = r.id AND m.claim_token = r.token AND m.status = 'sending';

-- name: messages_renew
-- A live dispatcher extends the leases of the messages it still holds (buffered or in flight),
-- so that a slow send is never mistaken for an abandoned one.
UPDATE invitation_messages m
SET claimed_until = now() + make_interval(secs => $3::float8)
FROM unnest($1::text[], $2::bigint[]) AS r (id, token)
WHERE m.id = r.id AND m.claim_token = r.token AND m.status = 'sending';

-- name: messages_expire_lease
-- A dispatcher gives up on messages it cannot settle (Twilio could not be asked whether a
-- cut-off request reached it): their lease ends now, so the next sweep asks Twilio.
UPDATE invitation_messages m
SET claimed_until = now()
FROM unnest($1::text[], $2::bigint[]) AS r (id, token)
WHERE m.id = r.id AND m.claim_token = r.token AND m.status = 'sending';
