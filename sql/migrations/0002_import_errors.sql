-- Import errors in a side table (issue 3, performance). Appending every chunk's errors to
-- customer_import_batches.error_log rewrote the whole jsonb document per chunk, a cost that
-- grew with the square of the batch size. Each rejected or skipped row is now one row here,
-- inserted set-based in the chunk's transaction; error_log keeps only the first 100 errors
-- (same entries, same shape) so the spec column still shows what went wrong.
CREATE TABLE import_errors (
    batch_id varchar NOT NULL REFERENCES customer_import_batches (id) ON DELETE CASCADE,
    row_number integer NOT NULL,
    -- The row's original cells as JSON, AES-GCM encrypted (purpose 'import_row'): they hold PII.
    original_enc text NOT NULL,
    -- The row's error messages, a JSON array of strings.
    errors jsonb NOT NULL,
    PRIMARY KEY (batch_id, row_number)
);
