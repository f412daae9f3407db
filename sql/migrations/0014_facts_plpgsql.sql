-- 0014: the funnel-fact functions of 0011 as PL/pgSQL, same statements.
--
-- The row triggers of 0011 call onboardd_refresh_message_facts for every message whose facts
-- move (a send accepted, a delivery callback), onboardd_refresh_first_booking for every
-- booking written and onboardd_first_booking_at for every customer linked to a user. As
-- LANGUAGE sql functions that cannot be inlined (they UPDATE, or aggregate over a table),
-- PostgreSQL planned their statement again on every call: about 0.24 ms per delivered
-- callback, most of the database's time in a status-callback flush. PL/pgSQL keeps each
-- statement's plan for the session, so a call costs about a quarter of that (what is left is
-- mostly the customer row's write). What the functions return and write is unchanged.

CREATE OR REPLACE FUNCTION onboardd_first_booking_at(p_salon_id varchar, p_user_id varchar,
                                                     p_registered_at timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT min(b.created_at) FROM bookings b
            WHERE b.salon_id = p_salon_id AND b.user_id = p_user_id
              AND b.created_at >= p_registered_at);
END
$$;

CREATE OR REPLACE FUNCTION onboardd_refresh_message_facts(p_customer_id varchar) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
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
          IS DISTINCT FROM (g.invited, g.delivered, g.last_message_at);
END
$$;

CREATE OR REPLACE FUNCTION onboardd_refresh_first_booking(p_salon_id varchar, p_user_id varchar)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE imported_customers c
    SET first_booking_at = x.at
    FROM (SELECT k.id, onboardd_first_booking_at(k.salon_id, k.linked_user_id,
                                                 k.registered_at) AS at
          FROM imported_customers k
          WHERE k.salon_id = p_salon_id AND k.linked_user_id = p_user_id) x
    WHERE c.id = x.id AND c.first_booking_at IS DISTINCT FROM x.at;
END
$$;
