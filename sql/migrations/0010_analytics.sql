-- 0010: analytics (issue 12). The funnel's one definition, the campaign audience's one
-- definition (which can now target a funnel stage), and the indexes the analytics reads need.

-- The host app's bookings: analytics needs when a booking was made (first booking after
-- registration). A host table created before onboardd may lack the column; existing rows then
-- get the migration's time, which the README's "Host app tables" section states.
ALTER TABLE bookings ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
-- A salon's bookings by user: the first booking after registration and the booking value,
-- read from the index alone.
CREATE INDEX IF NOT EXISTS onboardd_bookings_salon_user_idx
    ON bookings (salon_id, user_id, created_at) INCLUDE (amount_in_paisa);

-- Analytics reads a salon's rows through indexes keyed by salon, so that the cost of a report
-- follows the salon's size, not the platform's, and (covering the columns the reads use) from
-- the index alone. The analytics queries run with nested loops off (onboardd.db.analytics):
-- their joins are hash or merge joins between such salon-sized sets.

-- A salon's messages in customer order, with every column the analytics reads use: the
-- funnel's per-customer flags (merged with the customers below without a sort), the windowed
-- sent and delivered counts, the campaign comparison and the conversion curve. (Status updates
-- already change indexed columns, so covering them costs no HOT updates.)
CREATE INDEX invitation_messages_salon_idx
    ON invitation_messages (salon_id, imported_customer_id)
    INCLUDE (campaign_id, status, twilio_message_sid, queued_at, delivered_at, read_at,
             updated_at);

-- A salon's customers in id order, with what the funnel reads of them.
CREATE INDEX imported_customers_salon_funnel_idx
    ON imported_customers (salon_id, id)
    INCLUDE (created_at, invited_at, registered_at, linked_user_id);

-- A salon's registered customers by user: joined with the salon's bookings (first booking) and
-- redemptions (who redeemed).
CREATE INDEX imported_customers_salon_linked_idx
    ON imported_customers (salon_id, linked_user_id, id) INCLUDE (registered_at)
    WHERE linked_user_id IS NOT NULL;

-- An offer's redemptions by time (the windowed redemption counts and discounts).
CREATE INDEX welcome_offer_redemptions_redeemed_idx
    ON welcome_offer_redemptions (welcome_offer_id, redeemed_at)
    INCLUDE (user_id, discount_applied_in_paisa) WHERE status = 'redeemed';

-- The funnel, one row per customer in scope: the salon's imported customers, or (with
-- p_campaign_id) the customers that campaign targeted, judged by that campaign's messages.
-- stage is the furthest stage reached, each a subset of the one before:
--   0 imported, 1 invited (a message accepted by Twilio), 2 delivered (a message delivered or
--   read), 3 registered (linked to an app user), 4 first booking (a booking at this salon by
--   that user at or after registration).
-- A plain SQL function so the planner inlines it into each caller's query.
CREATE FUNCTION onboardd_customer_funnel(p_salon_id varchar, p_campaign_id varchar)
RETURNS TABLE (customer_id varchar, created_at timestamptz, invited_at timestamptz,
               registered_at timestamptz, linked_user_id varchar, last_message_at timestamptz,
               first_booking_at timestamptz, stage integer)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.created_at, c.invited_at, c.registered_at, c.linked_user_id,
           g.last_message_at, fb.at,
           CASE WHEN NOT coalesce(g.invited, false) THEN 0
                WHEN NOT g.delivered THEN 1
                WHEN c.linked_user_id IS NULL THEN 2
                WHEN fb.at IS NULL THEN 3
                ELSE 4 END
    FROM imported_customers c
    LEFT JOIN (
        SELECT m.imported_customer_id,
               bool_or(onboardd_counts_sent(m.status, m.twilio_message_sid) = 1) AS invited,
               bool_or(onboardd_counts_delivered(m.status) = 1) AS delivered,
               max(m.queued_at) AS last_message_at
        FROM invitation_messages m
        WHERE m.salon_id = p_salon_id
          AND (p_campaign_id IS NULL OR m.campaign_id = p_campaign_id)
        GROUP BY m.imported_customer_id
    ) g ON g.imported_customer_id = c.id
    LEFT JOIN (
        -- Per registered customer of the salon (the same row as c), as a join rather than a
        -- lookup per customer: a hash or merge join of the salon's registered customers with
        -- its bookings.
        SELECT r.id, min(b.created_at) AS at
        FROM imported_customers r
        JOIN bookings b ON b.salon_id = r.salon_id AND b.user_id = r.linked_user_id
                       AND b.created_at >= r.registered_at
        WHERE r.salon_id = p_salon_id AND r.linked_user_id IS NOT NULL
        GROUP BY r.id
    ) fb ON fb.id = c.id
    WHERE c.salon_id = p_salon_id
      AND (p_campaign_id IS NULL OR g.imported_customer_id IS NOT NULL)
$$;

-- A campaign's audience: the salon's customers of the given statuses, optionally only from
-- some import batches, imported after a moment, targeted by a campaign, at one funnel stage
-- (not yet in the next; judged by that campaign's messages when one is given), and not invited
-- in the last p_min_days_since_invite days. The one definition behind the audience count,
-- its sample and the send start's freeze.
CREATE FUNCTION onboardd_audience(p_salon_id varchar, p_statuses text[], p_batch_ids text[],
                                  p_imported_after timestamptz, p_campaign_id varchar,
                                  p_stage integer, p_min_days_since_invite integer)
RETURNS SETOF imported_customers
LANGUAGE sql STABLE AS $$
    SELECT c.* FROM imported_customers c
    WHERE c.salon_id = p_salon_id AND c.status = ANY(p_statuses)
      AND (p_batch_ids IS NULL OR c.import_batch_id = ANY(p_batch_ids))
      AND (p_imported_after IS NULL OR c.created_at >= p_imported_after)
      AND (p_campaign_id IS NULL OR EXISTS (
            SELECT 1 FROM invitation_messages m
            WHERE m.campaign_id = p_campaign_id AND m.imported_customer_id = c.id))
      AND (p_stage IS NULL OR c.id IN (
            SELECT f.customer_id FROM onboardd_customer_funnel(p_salon_id, p_campaign_id) f
            WHERE f.stage = p_stage))
      AND (p_min_days_since_invite IS NULL
           OR coalesce(c.last_invited_at, c.invited_at) IS NULL
           OR coalesce(c.last_invited_at, c.invited_at)
              <= now() - make_interval(days => p_min_days_since_invite))
$$;
