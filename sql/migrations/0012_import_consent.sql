-- 0012: marketing consent read from the imported file (issue 13), and why a customer is opted
-- out.
--
-- imported_customers
--   consent                what the file's consent columns said: yes, no or unknown (NULL: the
--                          customer was imported before consent was read); a START from the
--                          customer sets yes
--   consent_source         what decided it: the header of the column that said no, or START
--   opt_out_reason         why the status is opted_out: refused, blocked or unsubscribed (the
--                          file said so), consent_required (the file said nothing and
--                          [import] default_consent = "require"), stop (the customer sent STOP,
--                          or the carrier reported an opt-out). Cleared by START.
--   name_from_organisation the name is the contact's organisation (no personal name existed),
--                          so a greeting uses all of it rather than its first word
-- customer_import_batches
--   default_consent        what an unknown consent meant for this batch, fixed at upload so the
--                          preview and the import agree
--   imported_opted_out     customers this batch imported as opted_out
--   consent_unknown        customers this batch imported with unknown consent
--   existing_opted_out     customers already imported whom this file's explicit no opted out

ALTER TABLE imported_customers
    ADD COLUMN consent varchar(10),
    ADD COLUMN consent_source varchar(255),
    ADD COLUMN opt_out_reason varchar(32),
    ADD COLUMN name_from_organisation boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT imported_customers_consent_check
        CHECK (consent IN ('yes', 'no', 'unknown'));

ALTER TABLE customer_import_batches
    ADD COLUMN default_consent varchar(10) NOT NULL DEFAULT 'assume',
    ADD COLUMN imported_opted_out integer NOT NULL DEFAULT 0,
    ADD COLUMN consent_unknown integer NOT NULL DEFAULT 0,
    ADD COLUMN existing_opted_out integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT customer_import_batches_default_consent_check
        CHECK (default_consent IN ('assume', 'require'));

-- Customers who sent STOP before this migration: say so.
UPDATE imported_customers SET opt_out_reason = 'stop'
WHERE status = 'opted_out' AND opt_out_reason IS NULL;
