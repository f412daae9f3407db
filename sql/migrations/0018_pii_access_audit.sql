-- 0018: the PII access log a salon can audit (issue 16, data-subject rights).
--
-- pii_access_log
--   route         the HTTP route that showed the PII, as 'METHOD /path/{pattern}' (the admin
--                 UI's routes too); NULL when no request did (a command line tool)
--   customer_ids  the imported customers whose PII the read showed, when it showed a known
--                 set of them (an export, a reveal, an erase, a page of the customer list);
--                 NULL for reads over a whole salon (the analytics export) or rows written
--                 before this migration
--
-- A salon reads its log newest first, a page at a time, optionally only the entries naming
-- one customer: (salon_id, created_at DESC, id DESC) serves the pages; the GIN index the
-- "who saw this customer" filter.

ALTER TABLE pii_access_log
    ADD COLUMN route varchar(200),
    ADD COLUMN customer_ids varchar[];

DROP INDEX pii_access_log_salon_idx;
CREATE INDEX pii_access_log_salon_idx ON pii_access_log (salon_id, created_at DESC, id DESC);
CREATE INDEX pii_access_log_customers_idx ON pii_access_log USING gin (customer_ids)
    WHERE customer_ids IS NOT NULL;
