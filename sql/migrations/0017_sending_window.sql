-- 0017: quiet hours. Each salon has a daily sending window of local wall-clock time (in
-- salons.timezone); invitations go out only inside it (onboardd.domain.sending_hours has the
-- rules and the same computation in Python). A salon without a row here, or with NULL times,
-- uses [campaigns] sending_window_start / sending_window_end.
--
-- Times are seconds after local midnight: the window is [start, end); start > end crosses
-- midnight; end 86400 is 24:00; start = end is refused (a window has a length).

CREATE TABLE onboardd_salon_settings (
    salon_id varchar PRIMARY KEY REFERENCES salons (id) ON DELETE CASCADE,
    sending_window_start_s integer CHECK (sending_window_start_s BETWEEN 0 AND 86399),
    sending_window_end_s integer CHECK (sending_window_end_s BETWEEN 1 AND 86400),
    updated_by varchar(255),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT onboardd_salon_settings_window_pair
        CHECK ((sending_window_start_s IS NULL) = (sending_window_end_s IS NULL)),
    CONSTRAINT onboardd_salon_settings_window_length
        CHECK (sending_window_start_s <> sending_window_end_s)
);

-- Whether the window [start_s, end_s) is open at the instant ``at`` in zone ``tz``. A zone
-- PostgreSQL does not know (the host app may write any text into salons.timezone) is read as
-- ``fallback_tz`` instead of failing the dispatcher's claim of every salon. Called once per
-- sending campaign per claim, so the exception block's subtransaction costs nothing that shows.
CREATE FUNCTION onboardd_sending_open(tz text, start_s integer, end_s integer, fallback_tz text,
                                      at timestamptz) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    tod double precision;
BEGIN
    BEGIN
        tod := extract(epoch FROM (at AT TIME ZONE tz)::time);
    EXCEPTION WHEN invalid_parameter_value OR null_value_not_allowed THEN
        tod := extract(epoch FROM (at AT TIME ZONE fallback_tz)::time);
    END;
    IF start_s < end_s THEN
        RETURN tod >= start_s AND tod < end_s;
    END IF;
    RETURN tod >= start_s OR tod < end_s;
END
$$;
