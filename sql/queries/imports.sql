-- Customer import (spec §3, §7.1): batches, the importer's claims and chunks, the customer list.

-- name: import_salon_region
SELECT country FROM salons WHERE id = $1;

-- name: insert_import_batch
INSERT INTO customer_import_batches
    (salon_id, imported_by, file_name, total_records, status, file_kind, file_data, mapping, region)
VALUES ($1, $2, $3, $4, 'preview', $5, $6, $7, $8)
RETURNING id, created_at;

-- name: import_existing_phone_hashes
SELECT phone_hash FROM imported_customers WHERE salon_id = $1 AND phone_hash = ANY($2::bytea[]);

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

-- name: import_batch_status
SELECT id, salon_id, status, file_name, total_records, processed, successful_imports,
       failed_imports, duplicate_skipped, failure_reason, created_at, confirmed_at, completed_at,
       coalesce(jsonb_array_length(error_log), 0) AS error_count,
       coalesce(jsonb_path_query_array(error_log, '$[0 to 99]'), '[]'::jsonb) AS first_errors
FROM customer_import_batches
WHERE id = $1 AND salon_id = $2;

-- name: import_batch_error_log
SELECT status, mapping, coalesce(error_log, '[]'::jsonb) AS error_log
FROM customer_import_batches
WHERE id = $1 AND salon_id = $2;

-- name: claim_import_batch
-- The oldest confirmed batch nobody holds (or whose holder's lease ran out).
UPDATE customer_import_batches AS b
SET claimed_until = now() + make_interval(secs => $1)
WHERE b.id = (
    SELECT id FROM customer_import_batches
    WHERE status = 'processing' AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY confirmed_at, id
    FOR UPDATE SKIP LOCKED
    LIMIT 1)
RETURNING b.id, b.salon_id, b.file_name, b.file_kind, b.file_data, b.mapping, b.region,
          b.processed, b.total_records;

-- name: import_claimed_batch
-- A batch the caller has just confirmed with a lease of its own (the CLI).
SELECT id, salon_id, file_name, file_kind, file_data, mapping, region, processed, total_records
FROM customer_import_batches
WHERE id = $1 AND status = 'processing';

-- name: import_insert_chunk
-- One statement, one round trip: lock the batch and prove the claim still holds (nobody has
-- committed a chunk since we read `processed`), renew the lease, insert the valid rows.
-- Duplicates are the rows that did not insert. The commit need not wait for the WAL flush:
-- if the server crashes, the rows and the `processed` counter of the last chunks are lost
-- together and the batch resumes before them.
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
guard AS (
    UPDATE customer_import_batches
    SET claimed_until = now() + make_interval(secs => $3)
    WHERE id = $1 AND processed = $2 AND status = 'processing'
      AND EXISTS (SELECT 1 FROM async_commit)
    RETURNING id, salon_id),
ins AS (
    INSERT INTO imported_customers
        (salon_id, import_batch_id, customer_name, phone_enc, normalized_phone_enc, email_enc,
         phone_hash, source_row)
    SELECT g.salon_id, g.id, r.name, r.phone_enc, r.e164_enc, r.email_enc, r.phone_hash,
           r.source_row
    FROM guard AS g,
         unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::int[])
            AS r (name, phone_enc, e164_enc, email_enc, phone_hash, source_row)
    ON CONFLICT (salon_id, phone_hash) DO NOTHING
    RETURNING source_row)
SELECT (SELECT count(*) FROM guard) AS guarded,
       (SELECT coalesce(array_agg(source_row), '{}') FROM ins) AS inserted;

-- name: import_record_chunk
-- Counters, progress and errors move in the chunk's transaction; the last chunk ends the batch.
UPDATE customer_import_batches
SET processed = processed + $2,
    successful_imports = successful_imports + $3,
    failed_imports = failed_imports + $4,
    duplicate_skipped = duplicate_skipped + $5,
    error_log = CASE WHEN jsonb_array_length($6::jsonb) = 0 THEN error_log
                     ELSE coalesce(error_log, '[]'::jsonb) || $6::jsonb END,
    total_records = $7,
    status = CASE WHEN processed + $2 >= $7 THEN 'completed' ELSE status END,
    completed_at = CASE WHEN processed + $2 >= $7 THEN now() END,
    claimed_until = CASE WHEN processed + $2 >= $7 THEN NULL ELSE claimed_until END,
    file_data = CASE WHEN processed + $2 >= $7 THEN NULL ELSE file_data END
WHERE id = $1
RETURNING status, processed;

-- name: import_fail_batch
UPDATE customer_import_batches
SET status = 'failed', failure_reason = $2, completed_at = now(), claimed_until = NULL,
    file_data = NULL
WHERE id = $1 AND status = 'processing';

-- name: import_release_batch
-- Hand a claimed batch back (shutdown): the next importer resumes at `processed`.
UPDATE customer_import_batches SET claimed_until = NULL
WHERE id = $1 AND status = 'processing';

-- name: import_expire_previews
-- Previews nobody confirmed: drop the stored file (it holds plaintext phones).
UPDATE customer_import_batches
SET status = 'failed', failure_reason = 'preview expired: the import was not confirmed in time',
    completed_at = now(), file_data = NULL
WHERE status = 'preview' AND created_at < now() - make_interval(secs => $1);

-- name: list_imported_customers
SELECT id, import_batch_id, customer_name, phone_enc, normalized_phone_enc, email_enc, status,
       invited_at, registered_at, linked_user_id, created_at,
       count(*) OVER () AS total
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

-- name: import_log_pii_access
INSERT INTO pii_access_log (actor, salon_id, action, record_count, details, request_id)
VALUES ($1, $2, $3, $4, $5, $6);
