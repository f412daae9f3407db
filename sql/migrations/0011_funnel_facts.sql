-- 0011: each customer's funnel facts kept on its row (issue 12's big-salon target).
--
-- The funnel of a whole salon used to be computed per report: the salon's messages grouped by
-- customer, and its registered customers joined with its bookings. For a salon of 100k
-- customers that was most of a report's time. Now each customer row carries what the funnel
-- reads of the other tables, and triggers keep it exact in the same transaction as every write
-- that changes it, whoever writes (the actors, the API, the host app's bookings, a cascade):
--   funnel_invited    a message of the customer counts as sent (onboardd_counts_sent)
--   funnel_delivered  a message of the customer was delivered or read
--   last_message_at   the latest queued_at of the customer's messages
--   first_booking_at  the customer's first booking at its salon by its linked user, at or
--                     after registered_at (NULL: none, or not registered)
-- A salon's report reads these from one index (imported_customers_salon_funnel_idx). The
-- funnel of one campaign is still judged by that campaign's messages, at read time.

ALTER TABLE imported_customers
    ADD COLUMN funnel_invited boolean NOT NULL DEFAULT false,
    ADD COLUMN funnel_delivered boolean NOT NULL DEFAULT false,
    ADD COLUMN last_message_at timestamptz,
    ADD COLUMN first_booking_at timestamptz;

-- The stage from the facts: 0 imported, 1 invited, 2 delivered, 3 registered, 4 first booking
-- (each a subset of the one before, as in onboardd_customer_funnel).
CREATE FUNCTION onboardd_funnel_stage(invited boolean, delivered boolean,
                                      linked_user_id varchar, first_booking_at timestamptz)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN NOT coalesce(invited, false) THEN 0
                WHEN NOT coalesce(delivered, false) THEN 1
                WHEN linked_user_id IS NULL THEN 2
                WHEN first_booking_at IS NULL THEN 3
                ELSE 4 END
$$;

-- The first booking at salon p_salon_id by user p_user_id at or after p_registered_at.
CREATE FUNCTION onboardd_first_booking_at(p_salon_id varchar, p_user_id varchar,
                                          p_registered_at timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT min(b.created_at) FROM bookings b
    WHERE b.salon_id = p_salon_id AND b.user_id = p_user_id AND b.created_at >= p_registered_at
$$;

-- Recount one customer's message facts from its messages (writes only when they changed).
CREATE FUNCTION onboardd_refresh_message_facts(p_customer_id varchar) RETURNS void
LANGUAGE sql AS $$
    UPDATE imported_customers c
    SET funnel_invited = g.invited, funnel_delivered = g.delivered,
        last_message_at = g.last_message_at
    FROM (SELECT coalesce(bool_or(onboardd_counts_sent(m.status, m.twilio_message_sid) = 1),
                          false) AS invited,
                 coalesce(bool_or(onboardd_counts_delivered(m.status) = 1), false) AS delivered,
                 max(m.queued_at) AS last_message_at
          FROM invitation_messages m
          WHERE m.imported_customer_id = p_customer_id) g
    WHERE c.id = p_customer_id
      AND (c.funnel_invited, c.funnel_delivered, c.last_message_at)
          IS DISTINCT FROM (g.invited, g.delivered, g.last_message_at)
$$;

-- Recount the first booking of the customers of salon p_salon_id linked to user p_user_id.
CREATE FUNCTION onboardd_refresh_first_booking(p_salon_id varchar, p_user_id varchar)
RETURNS void
LANGUAGE sql AS $$
    UPDATE imported_customers c
    SET first_booking_at = x.at
    FROM (SELECT k.id, onboardd_first_booking_at(k.salon_id, k.linked_user_id,
                                                 k.registered_at) AS at
          FROM imported_customers k
          WHERE k.salon_id = p_salon_id AND k.linked_user_id = p_user_id) x
    WHERE c.id = x.id AND c.first_booking_at IS DISTINCT FROM x.at
$$;

-- Messages: a change that can move a customer's facts recounts that customer. Claims and
-- retries (pending <-> sending) and freshly frozen pending messages do not fire.
CREATE FUNCTION onboardd_message_facts_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM onboardd_refresh_message_facts(OLD.imported_customer_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE'
                            AND NEW.imported_customer_id <> OLD.imported_customer_id) THEN
        PERFORM onboardd_refresh_message_facts(NEW.imported_customer_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER onboardd_message_facts_insert
    AFTER INSERT ON invitation_messages FOR EACH ROW
    WHEN (onboardd_counts_sent(NEW.status, NEW.twilio_message_sid) = 1
          OR onboardd_counts_delivered(NEW.status) = 1 OR NEW.queued_at IS NOT NULL)
    EXECUTE FUNCTION onboardd_message_facts_changed();

CREATE TRIGGER onboardd_message_facts_update
    AFTER UPDATE ON invitation_messages FOR EACH ROW
    WHEN (onboardd_counts_sent(OLD.status, OLD.twilio_message_sid)
              <> onboardd_counts_sent(NEW.status, NEW.twilio_message_sid)
          OR onboardd_counts_delivered(OLD.status) <> onboardd_counts_delivered(NEW.status)
          OR OLD.queued_at IS DISTINCT FROM NEW.queued_at
          OR OLD.imported_customer_id <> NEW.imported_customer_id)
    EXECUTE FUNCTION onboardd_message_facts_changed();

CREATE TRIGGER onboardd_message_facts_delete
    AFTER DELETE ON invitation_messages FOR EACH ROW
    WHEN (onboardd_counts_sent(OLD.status, OLD.twilio_message_sid) = 1
          OR onboardd_counts_delivered(OLD.status) = 1 OR OLD.queued_at IS NOT NULL)
    EXECUTE FUNCTION onboardd_message_facts_changed();

-- Customers: linking, unlinking (also a deleted user's ON DELETE SET NULL) or a new
-- registration time recounts the first booking on the row being written.
CREATE FUNCTION onboardd_customer_first_booking() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.first_booking_at := onboardd_first_booking_at(NEW.salon_id, NEW.linked_user_id,
                                                      NEW.registered_at);
    RETURN NEW;
END
$$;

CREATE TRIGGER onboardd_customer_first_booking_insert
    BEFORE INSERT ON imported_customers FOR EACH ROW
    WHEN (NEW.linked_user_id IS NOT NULL OR NEW.first_booking_at IS NOT NULL)
    EXECUTE FUNCTION onboardd_customer_first_booking();

CREATE TRIGGER onboardd_customer_first_booking_update
    BEFORE UPDATE ON imported_customers FOR EACH ROW
    WHEN (OLD.linked_user_id IS DISTINCT FROM NEW.linked_user_id
          OR OLD.registered_at IS DISTINCT FROM NEW.registered_at
          OR OLD.salon_id <> NEW.salon_id)
    EXECUTE FUNCTION onboardd_customer_first_booking();

-- The host app's bookings: a booking made, moved or removed recounts the first booking of the
-- customers linked to its user at its salon (a few rows, through
-- imported_customers_salon_linked_idx).
CREATE FUNCTION onboardd_booking_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM onboardd_refresh_first_booking(OLD.salon_id, OLD.user_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (NEW.salon_id, NEW.user_id)
                                                 IS DISTINCT FROM (OLD.salon_id, OLD.user_id))
    THEN
        PERFORM onboardd_refresh_first_booking(NEW.salon_id, NEW.user_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER onboardd_booking_insert
    AFTER INSERT ON bookings FOR EACH ROW
    EXECUTE FUNCTION onboardd_booking_changed();

CREATE TRIGGER onboardd_booking_update
    AFTER UPDATE ON bookings FOR EACH ROW
    WHEN ((OLD.salon_id, OLD.user_id, OLD.created_at)
          IS DISTINCT FROM (NEW.salon_id, NEW.user_id, NEW.created_at))
    EXECUTE FUNCTION onboardd_booking_changed();

CREATE TRIGGER onboardd_booking_delete
    AFTER DELETE ON bookings FOR EACH ROW
    EXECUTE FUNCTION onboardd_booking_changed();

CREATE FUNCTION onboardd_bookings_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE imported_customers SET first_booking_at = NULL WHERE first_booking_at IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER onboardd_bookings_truncate
    AFTER TRUNCATE ON bookings FOR EACH STATEMENT
    EXECUTE FUNCTION onboardd_bookings_truncated();

-- Set every customer's facts from its messages and bookings, writing only the rows whose facts
-- differ: the backfill below, and the repair after a bulk load that bypassed the triggers
-- (session_replication_role = replica). Returns the number of rows corrected.
CREATE FUNCTION onboardd_refresh_funnel_facts() RETURNS bigint
LANGUAGE sql AS $$
    WITH fixed AS (
        UPDATE imported_customers c
        SET funnel_invited = x.invited, funnel_delivered = x.delivered,
            last_message_at = x.last_message_at, first_booking_at = x.first_booking_at
        FROM (
            SELECT r.id, coalesce(g.invited, false) AS invited,
                   coalesce(g.delivered, false) AS delivered, g.last_message_at,
                   b.at AS first_booking_at
            FROM imported_customers r
            LEFT JOIN (
                SELECT m.imported_customer_id AS id,
                       bool_or(onboardd_counts_sent(m.status, m.twilio_message_sid) = 1)
                           AS invited,
                       bool_or(onboardd_counts_delivered(m.status) = 1) AS delivered,
                       max(m.queued_at) AS last_message_at
                FROM invitation_messages m
                GROUP BY m.imported_customer_id) g ON g.id = r.id
            LEFT JOIN (
                SELECT k.id, min(b.created_at) AS at
                FROM imported_customers k
                JOIN bookings b ON b.salon_id = k.salon_id AND b.user_id = k.linked_user_id
                               AND b.created_at >= k.registered_at
                GROUP BY k.id) b ON b.id = r.id
        ) x
        WHERE c.id = x.id
          AND (c.funnel_invited, c.funnel_delivered, c.last_message_at, c.first_booking_at)
              IS DISTINCT FROM (x.invited, x.delivered, x.last_message_at, x.first_booking_at)
        RETURNING 1)
    SELECT count(*) FROM fixed
$$;

-- The facts of the customers that exist now, in one set-based pass (one new version of each
-- customer row that has messages or a first booking), with the funnel index rebuilt after it
-- rather than kept up row by row. The triggers keep the facts from here on.
DROP INDEX imported_customers_salon_funnel_idx;
SELECT onboardd_refresh_funnel_facts();

-- A salon's customers with their facts, read from the index alone.
CREATE INDEX imported_customers_salon_funnel_idx
    ON imported_customers (salon_id, id)
    INCLUDE (created_at, invited_at, registered_at, linked_user_id, funnel_invited,
             funnel_delivered, last_message_at, first_booking_at);

-- The funnel, one row per customer in scope (the definition of 0010, same columns): for the
-- whole salon, from the facts on the customer rows; for one campaign (p_campaign_id), the
-- customers it targeted, invited and delivered judged by that campaign's messages. Each branch
-- is gated on p_campaign_id, so a generic plan runs only one (a one-time filter), and a caller
-- passing a literal NULL gets the salon branch alone.
CREATE OR REPLACE FUNCTION onboardd_customer_funnel(p_salon_id varchar, p_campaign_id varchar)
RETURNS TABLE (customer_id varchar, created_at timestamptz, invited_at timestamptz,
               registered_at timestamptz, linked_user_id varchar, last_message_at timestamptz,
               first_booking_at timestamptz, stage integer)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.created_at, c.invited_at, c.registered_at, c.linked_user_id,
           c.last_message_at, c.first_booking_at,
           onboardd_funnel_stage(c.funnel_invited, c.funnel_delivered, c.linked_user_id,
                                 c.first_booking_at)
    FROM imported_customers c
    WHERE c.salon_id = p_salon_id AND p_campaign_id IS NULL
    UNION ALL
    SELECT c.id, c.created_at, c.invited_at, c.registered_at, c.linked_user_id,
           g.last_message_at, c.first_booking_at,
           onboardd_funnel_stage(g.invited, g.delivered, c.linked_user_id, c.first_booking_at)
    FROM imported_customers c
    JOIN (
        SELECT m.imported_customer_id,
               bool_or(onboardd_counts_sent(m.status, m.twilio_message_sid) = 1) AS invited,
               bool_or(onboardd_counts_delivered(m.status) = 1) AS delivered,
               max(m.queued_at) AS last_message_at
        FROM invitation_messages m
        WHERE m.salon_id = p_salon_id AND m.campaign_id = p_campaign_id
        GROUP BY m.imported_customer_id
    ) g ON g.imported_customer_id = c.id
    WHERE c.salon_id = p_salon_id AND p_campaign_id IS NOT NULL
$$;
