-- Salons: the host app's table (README, Schema). onboardd adds salons only from the CLI and on the
-- embedded first run.

-- name: salon_insert
INSERT INTO salons (name, country, timezone, app_download_link)
VALUES ($1, $2, $3, $4)
RETURNING id;

-- name: salon_list
SELECT s.id, s.name, s.country, s.timezone, s.app_download_link, s.created_at,
       (SELECT count(*) FROM imported_customers c WHERE c.salon_id = s.id) AS customers
FROM salons s
ORDER BY s.created_at, s.id
LIMIT $1;

-- name: salon_insert_first
-- The embedded first run (one process owns the embedded database): a salon only while there is none.
INSERT INTO salons (name)
SELECT $1
WHERE NOT EXISTS (SELECT 1 FROM salons)
RETURNING id;

-- name: salon_exists
-- The authorization step of every /api/salons/{salonId}/... request (primary-key lookup).
SELECT EXISTS (SELECT 1 FROM salons WHERE id = $1);

-- name: salon_names
-- The admin UI's salon switcher: the salons of a token's claim that exist, by name.
SELECT s.id, s.name, s.timezone
FROM salons s
WHERE s.id = ANY($1::text[])
ORDER BY s.name, s.id;
