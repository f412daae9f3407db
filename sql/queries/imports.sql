-- Customer import (spec §3, §7.1): batches, the importer's claims and chunks, the customer list.

-- name: import_salon_region
SELECT country FROM salons WHERE id = $1;

-- name: insert_import_batch
INSERT INTO customer_import_batches
    (salon_id, imported_by, file_name, total_records, status, file_kind, file_data, mapping, region,
     default_consent)
VALUES ($1, $2, $3, $4, 'preview', $5, $6, $7, $8, $9)
RETURNING id, created_at;

-- name: import_existing_phone_hashes
-- The salon's customers among these numbers (by keyed hash): the preview's duplicates, and whose
-- numbers it showed (the PII access log).
SELECT id, phone_hash FROM imported_customers
WHERE salon_id = $1 AND phone_hash = ANY($2::bytea[]);

-- name: import_lock_salon_imports
-- Serialises confirms of one salon so the rolling-hour count cannot be raced.
SELECT pg_advisory_xact_lock(hashtextextended('onboardd.import:' || $1, 0));

-- name: import_batch_for_confirm
-- No row lock: the salon lock serialises confirms, and a locked row would make the importer's
-- SKIP LOCKED claim pass over a batch another confirm has just committed.
SELECT id, status, mapping FROM customer_import_batches
WHERE id = $1 AND salon_id = $2;

-- name: import_recent_confirms
-- Confirm times of the salon's batches in the rolling hour, newest first, and the clock.
SELECT now() AS now,
       coalesce(array_agg(confirmed_at ORDER BY confirmed_at DESC), '{}') AS confirmed
FROM customer_import_batches
WHERE salon_id = $1 AND confirmed_at > now() - interval '1 hour';

-- name: import_confirm_batch
UPDATE customer_import_batches
SET status = 'processing', confirmed_at = now(), mapping = $3,
    claimed_until = CASE WHEN $4::float8 > 0 THEN now() + make_interval(secs => $4) END
WHERE id = $1 AND salon_id = $2 AND status = 'preview'
RETURNING id;

-- name: import_batch_for_preview
-- What previewing a stored upload again needs (another mapping chosen, or the page reloaded).
SELECT status, file_name, file_kind, file_data, mapping, region, default_consent, total_records,
       created_at
FROM customer_import_batches
WHERE id = $1 AND salon_id = $2;

-- name: import_update_preview_mapping
-- The mapping of a batch still awaiting confirmation (the confirm then uses it).
UPDATE customer_import_batches SET mapping = $3
WHERE id = $1 AND salon_id = $2 AND status = 'preview'
RETURNING id;

-- name: import_batch_status
-- Errors are exactly the failed and the skipped rows, so their count needs no scan.
SELECT id, salon_id, status, file_name, total_records, processed, successful_imports,
       failed_imports, duplicate_skipped, failure_reason, created_at, confirmed_at, completed_at,
       failed_imports + duplicate_skipped AS error_count, default_consent, imported_opted_out,
       consent_unknown, existing_opted_out,
       coalesce((SELECT jsonb_agg(jsonb_build_object('rowNumber', e.row_number,
                                                     'errors', e.errors) ORDER BY e.row_number)
                 FROM (SELECT row_number, errors FROM import_errors
                       WHERE batch_id = b.id ORDER BY row_number LIMIT 100) AS e),
                '[]'::jsonb) AS first_errors
FROM customer_import_batches AS b
WHERE id = $1 AND salon_id = $2;

-- name: import_batch_header
SELECT status, mapping FROM customer_import_batches WHERE id = $1 AND salon_id = $2;

-- name: import_batch_errors
-- Every error of a batch in row order (the caller checked the batch is the salon's).
SELECT row_number, original_enc, errors FROM import_errors
WHERE batch_id = $1
ORDER BY row_number;

-- name: claim_import_batch
-- The oldest confirmed batch nobody alive holds, for instance $2: unheld; held by a dead
-- instance (its liveness lock is gone, see 0013_instances.sql), taken at once; held by this
-- instance (its importer restarted); or held without liveness (the CLI) with its lease run out.
-- A live instance's batch is never taken, however slow it is: the chunk guard of
-- import_write_chunk would stop a double write anyway, but the work would be done twice.
UPDATE customer_import_batches AS b
SET claimed_until = now() + make_interval(secs => $1), claimed_by = $2::integer
WHERE b.id = (
    SELECT id FROM customer_import_batches
    WHERE status = 'processing'
      AND CASE WHEN claimed_by IS NULL THEN claimed_until IS NULL OR claimed_until < now()
               ELSE claimed_by = $2::integer
                    OR claimed_by NOT IN (SELECT onboardd_live_instances()) END
    ORDER BY confirmed_at, id
    FOR UPDATE SKIP LOCKED
    LIMIT 1)
RETURNING b.id, b.salon_id, b.file_name, b.file_kind, b.file_data, b.mapping, b.region,
          b.processed, b.total_records, b.default_consent;

-- name: import_claimed_batch
-- A batch the caller has just confirmed with a lease of its own (the CLI).
SELECT id, salon_id, file_name, file_kind, file_data, mapping, region, processed, total_records,
       default_consent
FROM customer_import_batches
WHERE id = $1 AND status = 'processing';

-- name: import_write_chunk
-- A whole chunk in one statement, one round trip, one (implicit) transaction: lock the batch
-- and prove the claim still holds (nobody has committed a chunk since we read `processed`),
-- insert the valid rows (duplicates are the rows that did not insert), opt out the customers
-- already there whose row in this file says no to marketing, record every rejected or skipped
-- row in import_errors, and advance counters, progress and lease; the last chunk ends the
-- batch. error_log only takes errors while it holds fewer than 100.
-- The commit need not wait for the WAL flush: if the server crashes, the rows and the
-- `processed` counter of the last chunks are lost together and the batch resumes before them.
-- $1 batch, $2 processed so far, $3 chunk size, $4 lease s, $5 total rows, $6 failed rows,
-- $7 in-file duplicates; valid rows $8..$14 and $19..$23; rejected rows $15..$17; $18 the
-- errors of a valid row whose phone the salon already has; $24 some valid row says no.
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
guard AS (
    SELECT id, salon_id FROM customer_import_batches
    WHERE id = $1 AND processed = $2 AND status = 'processing'
      AND EXISTS (SELECT 1 FROM async_commit)
    FOR UPDATE),
valid AS (
    SELECT * FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::bytea[],
                         $13::int[], $14::text[], $19::text[], $20::text[], $21::text[],
                         $22::text[], $23::bool[])
        AS r (name, phone_enc, e164_enc, email_enc, phone_hash, source_row, original_enc,
              status, consent, consent_source, opt_out_reason, name_from_organisation)),
ins AS (
    INSERT INTO imported_customers
        (salon_id, import_batch_id, customer_name, phone_enc, normalized_phone_enc, email_enc,
         phone_hash, source_row, status, opted_out_at, consent, consent_source, opt_out_reason,
         name_from_organisation)
    SELECT g.salon_id, g.id, v.name, v.phone_enc, v.e164_enc, v.email_enc, v.phone_hash,
           v.source_row, v.status, CASE WHEN v.status = 'opted_out' THEN now() END, v.consent,
           v.consent_source, v.opt_out_reason, v.name_from_organisation
    FROM guard AS g, valid AS v
    ON CONFLICT (salon_id, phone_hash) DO NOTHING
    RETURNING source_row, status, consent),
said_no AS (
    -- $24: the chunk has a row saying no (false for most files: nothing is looked up).
    SELECT v.phone_hash, v.consent_source, v.opt_out_reason FROM valid AS v
    WHERE $24::bool AND v.consent = 'no'
      AND v.source_row NOT IN (SELECT source_row FROM ins)),
refused AS (
    UPDATE imported_customers AS c
    SET status = 'opted_out', opted_out_at = coalesce(c.opted_out_at, now()), consent = 'no',
        consent_source = n.consent_source, opt_out_reason = n.opt_out_reason,
        updated_at = now()
    FROM guard AS g, said_no AS n
    WHERE c.salon_id = g.salon_id AND c.phone_hash = n.phone_hash
      AND c.status IN ('pending', 'invited', 'expired')
    RETURNING c.id),
errs AS (
    SELECT e.row_number, e.original_enc, e.errors::jsonb AS errors
    FROM unnest($15::int[], $16::text[], $17::text[]) AS e (row_number, original_enc, errors)
    UNION ALL
    SELECT v.source_row, v.original_enc, $18::jsonb
    FROM valid AS v
    WHERE v.source_row NOT IN (SELECT source_row FROM ins)),
saved AS (
    INSERT INTO import_errors (batch_id, row_number, original_enc, errors)
    SELECT g.id, e.row_number, e.original_enc, e.errors
    FROM guard AS g, errs AS e
    ON CONFLICT (batch_id, row_number) DO NOTHING
    RETURNING row_number, original_enc, errors),
counts AS (
    SELECT count(*) AS imported,
           cardinality($13::int[]) - count(*) AS conflicts,
           count(*) FILTER (WHERE status = 'opted_out') AS opted_out,
           count(*) FILTER (WHERE consent = 'unknown') AS unknown,
           (SELECT count(*) FROM refused) AS refused
    FROM ins),
upd AS (
    UPDATE customer_import_batches AS b
    SET processed = b.processed + $3,
        successful_imports = b.successful_imports + c.imported,
        failed_imports = b.failed_imports + $6,
        duplicate_skipped = b.duplicate_skipped + $7 + c.conflicts,
        imported_opted_out = b.imported_opted_out + c.opted_out,
        consent_unknown = b.consent_unknown + c.unknown,
        existing_opted_out = b.existing_opted_out + c.refused,
        error_log = CASE
            WHEN coalesce(jsonb_array_length(b.error_log), 0) >= 100
                 OR NOT EXISTS (SELECT 1 FROM saved) THEN b.error_log
            ELSE coalesce(b.error_log, '[]'::jsonb) || (
                SELECT jsonb_agg(jsonb_build_object('rowNumber', s.row_number,
                                                    'errors', s.errors,
                                                    'data', s.original_enc)
                                 ORDER BY s.row_number)
                FROM (SELECT *, row_number() OVER (ORDER BY row_number) AS n FROM saved) AS s
                WHERE s.n <= 100 - coalesce(jsonb_array_length(b.error_log), 0)) END,
        total_records = $5,
        status = CASE WHEN b.processed + $3 >= $5 THEN 'completed' ELSE b.status END,
        completed_at = CASE WHEN b.processed + $3 >= $5 THEN now() END,
        claimed_until = CASE WHEN b.processed + $3 >= $5 THEN NULL
                             ELSE now() + make_interval(secs => $4) END,
        file_data = CASE WHEN b.processed + $3 >= $5 THEN NULL ELSE b.file_data END
    FROM counts AS c
    WHERE b.id IN (SELECT id FROM guard)
    RETURNING b.status, b.processed)
SELECT EXISTS (SELECT 1 FROM guard) AS guarded, (SELECT status FROM upd) AS status,
       (SELECT processed FROM upd) AS processed;

-- name: import_fail_batch
UPDATE customer_import_batches
SET status = 'failed', failure_reason = $2, completed_at = now(), claimed_until = NULL,
    file_data = NULL
WHERE id = $1 AND status = 'processing';

-- name: import_release_batch
-- Hand a claimed batch back (shutdown): the next importer resumes at `processed`.
UPDATE customer_import_batches SET claimed_until = NULL, claimed_by = NULL
WHERE id = $1 AND status = 'processing';

-- name: import_expire_previews
-- Previews nobody confirmed: drop the stored file (it holds plaintext phones).
UPDATE customer_import_batches
SET status = 'failed', failure_reason = 'preview expired: the import was not confirmed in time',
    completed_at = now(), file_data = NULL
WHERE status = 'preview' AND created_at < now() - make_interval(secs => $1);

-- name: list_imported_customers
-- One page along imported_customers_salon_list_idx; the total is count_imported_customers (a
-- window count here would read and sort every matching row, 150 ms for a 100k-customer salon).
SELECT id, import_batch_id, customer_name, phone_enc, normalized_phone_enc, email_enc, status,
       invited_at, registered_at, linked_user_id, created_at, consent, consent_source,
       opt_out_reason, name_from_organisation
FROM imported_customers
WHERE salon_id = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR customer_name ILIKE $3 OR phone_hash = $4::bytea)
ORDER BY created_at, id
LIMIT $5 OFFSET $6;

-- name: count_imported_customers
SELECT count(*) FROM imported_customers
WHERE salon_id = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR customer_name ILIKE $3 OR phone_hash = $4::bytea);

-- name: imported_customer_brief
-- One customer of the salon for the admin UI: the name, the encrypted E.164 number (decrypted
-- only by a logged reveal) and the status.
SELECT id, customer_name, normalized_phone_enc, status
FROM imported_customers
WHERE id = $1 AND salon_id = $2;

-- name: import_log_pii_access
-- $7 the route that showed the PII, $8 the customers whose PII it showed (see 0018).
INSERT INTO pii_access_log (actor, salon_id, action, record_count, details, request_id, route,
                            customer_ids)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- GDPR erase (spec §9.1) ---------------------------------------------------------------------

-- name: import_erase_lock
-- Lock the customer ($1, of salon $2) and its messages, so no status update or send changes
-- them between this read and the erase. The messages first, then the customer (msgs is an
-- uncorrelated subquery of the customer's scan, run before it): the status recorder's order
-- (messages, then their campaign and customer), so an erase and a flush never
-- wait for each other in a cycle. Returns the encrypted E.164 number, to find the import error
-- rows.
WITH msgs AS (
    SELECT m.id FROM invitation_messages m
    WHERE m.imported_customer_id = $1 AND m.salon_id = $2
    ORDER BY m.id
    FOR UPDATE),
customer AS (
    SELECT id, normalized_phone_enc FROM imported_customers
    WHERE id = $1 AND salon_id = $2 AND (SELECT count(*) FROM msgs) >= 0
    FOR UPDATE)
SELECT c.normalized_phone_enc, (SELECT count(*) FROM msgs) AS messages FROM customer c;

-- name: import_salon_error_rows
-- Every rejected or skipped row of the salon's batches, with the region its phones were read in.
SELECT e.batch_id, e.row_number, e.original_enc, b.region
FROM import_errors e
JOIN customer_import_batches b ON b.id = e.batch_id
WHERE b.salon_id = $1;

-- name: import_erase_customer
-- Delete the customer (locked by import_erase_lock); its invitation messages cascade. Each
-- campaign's counters lose those messages' share, so they stay equal to recounts.
WITH gone AS (
    DELETE FROM imported_customers WHERE id = $1 AND salon_id = $2
    RETURNING id),
shares AS (
    SELECT m.campaign_id,
           sum(onboardd_counts_sent(m.status, m.twilio_message_sid)) AS sent,
           sum(onboardd_counts_delivered(m.status)) AS delivered,
           sum(onboardd_counts_read(m.status)) AS read,
           sum(onboardd_counts_failed(m.status)) AS failed,
           sum(onboardd_counts_skipped(m.status)) AS skipped
    FROM invitation_messages m JOIN gone g ON m.imported_customer_id = g.id
    GROUP BY m.campaign_id),
counters AS (
    UPDATE invitation_campaigns c
    SET messages_sent = c.messages_sent - s.sent,
        messages_delivered = c.messages_delivered - s.delivered,
        messages_read = c.messages_read - s.read,
        messages_failed = c.messages_failed - s.failed,
        messages_skipped = c.messages_skipped - s.skipped,
        updated_at = now()
    FROM shares s
    WHERE c.id = s.campaign_id
    RETURNING c.id)
SELECT (SELECT count(*) FROM gone) AS erased, (SELECT count(*) FROM counters) AS campaigns;

-- name: import_erase_error_rows
-- Drop the given error rows ($1 batch ids, $2 row numbers) of salon $3, and their entries in
-- the batches' error_log (which also carries the encrypted original cells).
WITH gone AS (
    DELETE FROM import_errors e
    USING unnest($1::varchar[], $2::int[]) AS g (batch_id, row_number),
          customer_import_batches b
    WHERE e.batch_id = g.batch_id AND e.row_number = g.row_number
      AND b.id = e.batch_id AND b.salon_id = $3
    RETURNING e.batch_id, e.row_number),
logs AS (
    UPDATE customer_import_batches b
    SET error_log = (
        SELECT coalesce(jsonb_agg(x.entry ORDER BY x.n), '[]'::jsonb)
        FROM jsonb_array_elements(b.error_log) WITH ORDINALITY AS x (entry, n)
        WHERE NOT EXISTS (SELECT 1 FROM gone
                          WHERE gone.batch_id = b.id
                            AND gone.row_number = (x.entry ->> 'rowNumber')::int))
    WHERE b.id IN (SELECT batch_id FROM gone) AND b.error_log IS NOT NULL
    RETURNING b.id)
SELECT (SELECT count(*) FROM gone) AS removed, (SELECT count(*) FROM logs) AS batches;

-- name: import_recent_uploads
-- Upload times of the salon in the rolling hour, newest first, the clock, and whether the
-- salon exists (under the salon lock, so the count cannot be raced).
SELECT now() AS now,
       EXISTS (SELECT 1 FROM salons WHERE id = $1) AS salon_exists,
       coalesce(array_agg(uploaded_at ORDER BY uploaded_at DESC), '{}') AS uploaded
FROM import_uploads
WHERE salon_id = $1 AND uploaded_at > now() - interval '1 hour';

-- name: import_record_upload
INSERT INTO import_uploads (salon_id) VALUES ($1);

-- name: import_forget_uploads
-- Upload attempts older than the rolling hour no longer count.
DELETE FROM import_uploads WHERE uploaded_at < now() - interval '1 hour';
