-- A salon's own settings (onboardd_salon_settings, 0017): its sending window. NULL times (or no
-- row) mean the [campaigns] default window.

-- name: salon_settings_get
SELECT s.id AS salon_id, s.timezone, st.sending_window_start_s, st.sending_window_end_s,
       st.updated_at, st.updated_by
FROM salons s
LEFT JOIN onboardd_salon_settings st ON st.salon_id = s.id
WHERE s.id = $1;

-- name: salon_settings_set_window
-- $2 / $3 seconds after local midnight, both NULL: back to the default window.
INSERT INTO onboardd_salon_settings (salon_id, sending_window_start_s, sending_window_end_s,
                                     updated_by)
VALUES ($1, $2, $3, $4)
ON CONFLICT (salon_id) DO UPDATE
SET sending_window_start_s = EXCLUDED.sending_window_start_s,
    sending_window_end_s = EXCLUDED.sending_window_end_s,
    updated_by = EXCLUDED.updated_by,
    updated_at = now();
