-- The analytics export's customer list (onboardd.db.analytics_export), read through a
-- server-side cursor so a salon of any size streams in pages. $1 salon, $2 a campaign of it or
-- NULL.
-- Every imported customer of the salon (with $2, only those the campaign targeted: the funnel's
-- campaign scope), oldest import first (the salon list index), with the
-- first booking from the funnel's one definition (onboardd_customer_funnel, migration 0010) and
-- the welcome offers redeemed as analytics counts them: redemptions of the salon's offers by
-- the app user the customer is linked to. Amounts and names are all time, not windowed.

-- name: analytics_export_customers
SELECT c.id, c.customer_name, c.normalized_phone_enc, c.status,
       c.created_at AS imported_at, c.invited_at, c.registered_at,
       ca.name AS last_campaign_name,
       rd.offers, coalesce(rd.discount, 0)::bigint AS discount,
       f.first_booking_at
FROM onboardd_customer_funnel($1, $2) f
JOIN imported_customers c ON c.id = f.customer_id
LEFT JOIN invitation_campaigns ca ON ca.id = c.last_campaign_id
LEFT JOIN LATERAL (
    SELECT string_agg(DISTINCT o.name, ', ') AS offers,
           sum(r.discount_applied_in_paisa) AS discount
    FROM welcome_offer_redemptions r
    JOIN welcome_offers o ON o.id = r.welcome_offer_id
    WHERE c.linked_user_id IS NOT NULL AND r.user_id = c.linked_user_id
      AND o.salon_id = $1 AND r.status = 'redeemed'
) rd ON true
ORDER BY c.created_at, c.id;
