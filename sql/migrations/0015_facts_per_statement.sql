-- 0015: the message funnel facts of 0011 kept by statement-level triggers.
--
-- 0011's row triggers ran onboardd_refresh_message_facts once per message whose facts moved:
-- one UPDATE of imported_customers per delivered callback, each paying a statement's set-up
-- on that table (its twelve indexes opened, its check constraints and its first-booking
-- trigger's WHEN clause read) and each row trigger's WHEN clause prepared again in every
-- statement. A status-recorder flush of 60 callbacks ran some 25 such statements. Now each
-- statement on invitation_messages runs one trigger, which finds from its transition tables
-- the customers whose facts may have moved and recounts them in one UPDATE. What the facts
-- are, and that a customer row is written only when one of them changes, is unchanged.

DROP TRIGGER onboardd_message_facts_insert ON invitation_messages;
DROP TRIGGER onboardd_message_facts_update ON invitation_messages;
DROP TRIGGER onboardd_message_facts_delete ON invitation_messages;
DROP FUNCTION onboardd_message_facts_changed();
DROP FUNCTION onboardd_refresh_message_facts(varchar);

-- Recount the message facts of these customers from their messages; write only the rows whose
-- facts differ (a customer with no message left gets false, false, NULL).
CREATE FUNCTION onboardd_refresh_message_facts(p_customer_ids varchar[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE imported_customers c
    SET funnel_invited = g.invited, funnel_delivered = g.delivered,
        last_message_at = g.last_message_at
    FROM (SELECT k.id,
                 coalesce(a.invited, false) AS invited,
                 coalesce(a.delivered, false) AS delivered,
                 a.last_message_at
          FROM unnest(p_customer_ids) AS k(id)
          CROSS JOIN LATERAL (
              SELECT bool_or(onboardd_counts_sent(m.status, m.twilio_message_sid) = 1)
                         AS invited,
                     bool_or(onboardd_counts_delivered(m.status) = 1) AS delivered,
                     max(m.queued_at) AS last_message_at
              FROM invitation_messages m
              WHERE m.imported_customer_id = k.id) a) g
    WHERE c.id = g.id
      AND (c.funnel_invited, c.funnel_delivered, c.last_message_at)
          IS DISTINCT FROM (g.invited, g.delivered, g.last_message_at);
END
$$;

-- Inserted or deleted messages: the customers of those that count as sent or delivered or
-- carry a queued_at (a frozen pending message changes no fact).
CREATE FUNCTION onboardd_message_facts_added_or_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM onboardd_refresh_message_facts(ARRAY(
            SELECT DISTINCT n.imported_customer_id FROM new_rows n
            WHERE onboardd_counts_sent(n.status, n.twilio_message_sid) = 1
               OR onboardd_counts_delivered(n.status) = 1 OR n.queued_at IS NOT NULL));
    ELSE
        PERFORM onboardd_refresh_message_facts(ARRAY(
            SELECT DISTINCT o.imported_customer_id FROM old_rows o
            WHERE onboardd_counts_sent(o.status, o.twilio_message_sid) = 1
               OR onboardd_counts_delivered(o.status) = 1 OR o.queued_at IS NOT NULL));
    END IF;
    RETURN NULL;
END
$$;

-- Updated messages: the customers whose updated messages' (counts as sent, counts as
-- delivered, queued_at) are not the same before and after. Compared as multisets per
-- customer, so it holds for any update (a message moved to another customer, a changed id);
-- claims and retries (pending <-> sending) and a second 'read' cancel out and recount nobody.
CREATE FUNCTION onboardd_message_facts_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM onboardd_refresh_message_facts(ARRAY(
        SELECT DISTINCT x.customer_id
        FROM (SELECT n.imported_customer_id AS customer_id,
                     onboardd_counts_sent(n.status, n.twilio_message_sid) AS sent,
                     onboardd_counts_delivered(n.status) AS delivered, n.queued_at, 1 AS side
              FROM new_rows n
              UNION ALL
              SELECT o.imported_customer_id, onboardd_counts_sent(o.status, o.twilio_message_sid),
                     onboardd_counts_delivered(o.status), o.queued_at, -1
              FROM old_rows o) x
        GROUP BY x.customer_id, x.sent, x.delivered, x.queued_at
        HAVING sum(x.side) <> 0));
    RETURN NULL;
END
$$;

CREATE TRIGGER onboardd_message_facts_insert
    AFTER INSERT ON invitation_messages REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION onboardd_message_facts_added_or_removed();

CREATE TRIGGER onboardd_message_facts_update
    AFTER UPDATE ON invitation_messages REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION onboardd_message_facts_updated();

CREATE TRIGGER onboardd_message_facts_delete
    AFTER DELETE ON invitation_messages REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION onboardd_message_facts_added_or_removed();
