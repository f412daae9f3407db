-- Data-subject rights and audit (issue 16, spec §9.1): one customer's export, the salon's PII
-- access log, the imports an erase must wait for, and re-encryption under the current key.

-- name: privacy_customer
-- Everything the customer row holds (PII still encrypted).
SELECT id, salon_id, import_batch_id, customer_name, phone_enc, normalized_phone_enc,
       email_enc, phone_hash, status, invited_at, registered_at, linked_user_id, created_at,
       updated_at, source_row, offer_code, download_token, last_campaign_id, last_invited_at,
       opted_out_at, consent, consent_source, opt_out_reason, name_from_organisation,
       funnel_invited, funnel_delivered, last_message_at, first_booking_at
FROM imported_customers
WHERE id = $1 AND salon_id = $2;

-- name: privacy_customer_messages
-- The customer's invitation messages with their campaign's name, oldest first.
SELECT m.id, m.campaign_id, c.name AS campaign_name, m.channel, m.status, m.sender,
       m.twilio_message_sid, m.fallback_from, m.fallback_sid, m.error_code, m.error_message,
       m.skip_reason, m.attempts, m.created_at, m.queued_at, m.sent_at, m.delivered_at,
       m.read_at, m.updated_at
FROM invitation_messages m
JOIN invitation_campaigns c ON c.id = m.campaign_id
WHERE m.imported_customer_id = $1 AND m.salon_id = $2
ORDER BY m.created_at, m.id;

-- name: privacy_opt_outs
-- Opt-outs of the number (per sender, across salons: a STOP applies to the sender).
SELECT sender, source, opted_out_at FROM opt_outs
WHERE phone_hash = $1
ORDER BY opted_out_at;

-- name: privacy_inbound_keywords
-- STOP/START keywords the number sent.
SELECT message_sid, sender, keyword, received_at FROM inbound_messages
WHERE phone_hash = $1
ORDER BY received_at, id;

-- name: privacy_redemptions
-- Offer grants and redemptions of the customer: linked to the imported record, or to its app
-- user for one of this salon's offers.
SELECT r.id, r.welcome_offer_id, o.name AS offer_name, r.user_id, r.imported_customer_id,
       r.booking_id, r.discount_applied_in_paisa, r.status, r.expires_at, r.redeemed_at,
       r.created_at
FROM welcome_offer_redemptions r
JOIN welcome_offers o ON o.id = r.welcome_offer_id
WHERE o.salon_id = $2
  AND (r.imported_customer_id = $1 OR ($3::varchar IS NOT NULL AND r.user_id = $3))
ORDER BY r.created_at, r.id;

-- name: privacy_salon_error_rows
-- Every rejected or skipped row of the salon's batches, with its errors and its batch's file
-- name and phone region (the caller keeps the rows holding one number).
SELECT e.batch_id, b.file_name, e.row_number, e.original_enc, e.errors, b.region
FROM import_errors e
JOIN customer_import_batches b ON b.id = e.batch_id
WHERE b.salon_id = $1
ORDER BY b.created_at, e.batch_id, e.row_number;

-- name: privacy_customer_accesses
-- The access log entries naming the customer, newest first (at most $3).
SELECT id, actor, action, route, record_count, customer_ids, details, request_id, created_at
FROM pii_access_log
WHERE salon_id = $1 AND customer_ids @> ARRAY[$2::varchar]
ORDER BY created_at DESC, id DESC
LIMIT $3;

-- name: privacy_open_imports
-- The salon's imports still holding their uploaded file: awaiting confirmation or running.
SELECT id, status, file_name, file_kind, file_data, region, total_records, processed,
       created_at, confirmed_at
FROM customer_import_batches
WHERE salon_id = $1 AND status IN ('preview', 'processing') AND file_data IS NOT NULL
ORDER BY created_at, id;

-- name: privacy_open_import_ids
-- Which of the salon's imports hold a file now (an erase re-reads this in its transaction).
SELECT id FROM customer_import_batches
WHERE salon_id = $1 AND status IN ('preview', 'processing') AND file_data IS NOT NULL;

-- The salon's PII access log -------------------------------------------------------------------

-- name: privacy_salon_timezone
SELECT timezone FROM salons WHERE id = $1;

-- name: pii_access_log_page
-- One page, newest first, of the salon's entries in [$2, $3), optionally only those naming
-- customer $4.
SELECT id, actor, action, route, record_count, customer_ids, details, request_id, created_at
FROM pii_access_log
WHERE salon_id = $1 AND created_at >= $2 AND created_at < $3
  AND ($4::varchar IS NULL OR customer_ids @> ARRAY[$4::varchar])
ORDER BY created_at DESC, id DESC
LIMIT $5 OFFSET $6;

-- name: pii_access_log_count
SELECT count(*) FROM pii_access_log
WHERE salon_id = $1 AND created_at >= $2 AND created_at < $3
  AND ($4::varchar IS NULL OR customer_ids @> ARRAY[$4::varchar]);

-- Re-encryption under the current key (`onboardd pii rotate`) ---------------------------------
-- Each page is the next rows (in key order, after $1) holding a ciphertext not written with key
-- $2; each write replaces a ciphertext only if it is still the one read, so a row changed
-- meanwhile is left for the next pass. Done rows no longer match, so a rerun resumes.

-- name: pii_key_census
-- How many ciphertexts each key id holds, per column.
SELECT 'imported_customers.phone_enc' AS column_name, split_part(phone_enc, '$', 1) AS key_id,
       count(*) AS n
FROM imported_customers GROUP BY 2
UNION ALL
SELECT 'imported_customers.normalized_phone_enc', split_part(normalized_phone_enc, '$', 1),
       count(*)
FROM imported_customers GROUP BY 2
UNION ALL
SELECT 'imported_customers.email_enc', split_part(email_enc, '$', 1), count(*)
FROM imported_customers WHERE email_enc IS NOT NULL GROUP BY 2
UNION ALL
SELECT 'import_errors.original_enc', split_part(original_enc, '$', 1), count(*)
FROM import_errors GROUP BY 2
UNION ALL
SELECT 'customer_import_batches.error_log', split_part(x.entry ->> 'data', '$', 1), count(*)
FROM customer_import_batches b,
     jsonb_array_elements(CASE WHEN jsonb_typeof(b.error_log) = 'array' THEN b.error_log
                               ELSE '[]'::jsonb END) AS x (entry)
WHERE x.entry ? 'data'
GROUP BY 2
ORDER BY 1, 2;

-- name: pii_hash_sample
-- A few customers' E.164 ciphertexts with their matching hash (is the hash key the same?).
SELECT normalized_phone_enc, phone_hash FROM imported_customers LIMIT $1;

-- name: pii_rotate_customers_page
SELECT id, phone_enc, normalized_phone_enc, email_enc FROM imported_customers
WHERE id > $1
  AND (split_part(phone_enc, '$', 1) <> $2 OR split_part(normalized_phone_enc, '$', 1) <> $2
       OR split_part(email_enc, '$', 1) <> $2)
ORDER BY id
LIMIT $3;

-- name: pii_rotate_customers_write
WITH written AS (
    UPDATE imported_customers c
    SET phone_enc = u.phone_enc, normalized_phone_enc = u.e164_enc, email_enc = u.email_enc
    FROM unnest($1::varchar[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[])
        AS u (id, old_phone, old_e164, old_email, phone_enc, e164_enc, email_enc)
    WHERE c.id = u.id AND c.phone_enc = u.old_phone AND c.normalized_phone_enc = u.old_e164
      AND c.email_enc IS NOT DISTINCT FROM u.old_email
    RETURNING c.id)
SELECT coalesce(array_agg(id), '{}') FROM written;

-- name: pii_rotate_error_rows_page
SELECT batch_id, row_number, original_enc FROM import_errors
WHERE (batch_id, row_number) > ($1::varchar, $2::int) AND split_part(original_enc, '$', 1) <> $3
ORDER BY batch_id, row_number
LIMIT $4;

-- name: pii_rotate_error_rows_write
WITH written AS (
    UPDATE import_errors e
    SET original_enc = u.new_enc
    FROM unnest($1::varchar[], $2::int[], $3::text[], $4::text[])
        AS u (batch_id, row_number, old_enc, new_enc)
    WHERE e.batch_id = u.batch_id AND e.row_number = u.row_number AND e.original_enc = u.old_enc
    RETURNING e.batch_id)
SELECT count(*) FROM written;

-- name: pii_rotate_error_logs_page
-- Batches whose error_log (the first 100 errors, each with its encrypted cells under 'data')
-- holds a ciphertext of another key.
SELECT id, error_log FROM customer_import_batches b
WHERE id > $1 AND jsonb_typeof(error_log) = 'array'
  AND EXISTS (SELECT 1 FROM jsonb_array_elements(b.error_log) AS x (entry)
              WHERE x.entry ? 'data' AND split_part(x.entry ->> 'data', '$', 1) <> $2)
ORDER BY id
LIMIT $3;

-- name: pii_rotate_error_logs_write
-- The logs travel as JSON text (asyncpg does not apply the pool's jsonb codec inside arrays).
WITH written AS (
    UPDATE customer_import_batches b
    SET error_log = u.new_log::jsonb
    FROM unnest($1::varchar[], $2::text[], $3::text[]) AS u (id, old_log, new_log)
    WHERE b.id = u.id AND b.error_log = u.old_log::jsonb
    RETURNING b.id)
SELECT coalesce(array_agg(id), '{}') FROM written;
