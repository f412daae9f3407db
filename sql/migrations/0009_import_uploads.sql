-- 0009: every upload (preview) attempt of a salon, for the per-salon upload rate
-- ([import] uploads_per_hour). Counted in the database so the limit holds across instances,
-- and per attempt rather than per stored batch, so refused files count too. No file, no PII:
-- a salon and a time. Rows older than the rolling hour are deleted by the preview-expiry job.
CREATE TABLE import_uploads (
    salon_id varchar NOT NULL REFERENCES salons (id) ON DELETE CASCADE,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_uploads_salon_idx ON import_uploads (salon_id, uploaded_at);
