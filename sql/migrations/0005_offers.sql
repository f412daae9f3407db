-- 0005: indexes for welcome offers and registration matching.

-- Listing an offer's redemptions page by page (and the ON DELETE CASCADE from welcome_offers).
CREATE INDEX welcome_offer_redemptions_offer_idx
    ON welcome_offer_redemptions (welcome_offer_id, created_at DESC, id);

-- A customer's linked imported records (claim by offer id; ON DELETE SET NULL from users).
CREATE INDEX imported_customers_linked_user_idx
    ON imported_customers (linked_user_id) WHERE linked_user_id IS NOT NULL;

-- The offer a salon's imported customer gets: the offer of the campaign that last invited them
-- when it is still active, else the salon's newest active offer (NULL when it has none).
-- One definition shared by the matcher, the mobile check and the claim.
CREATE FUNCTION onboardd_assigned_offer(p_salon_id varchar, p_campaign_id varchar)
RETURNS varchar
LANGUAGE sql STABLE AS $$
    SELECT w.id
    FROM welcome_offers w
    WHERE w.salon_id = p_salon_id AND w.is_active = 1
    ORDER BY (w.id IS NOT DISTINCT FROM (
                 SELECT c.welcome_offer_id FROM invitation_campaigns c WHERE c.id = p_campaign_id
             )) DESC,
             w.created_at DESC, w.id DESC
    LIMIT 1
$$;

-- The invitation expiry sweep looks only at invited customers, oldest invitation first.
CREATE INDEX imported_customers_invited_idx
    ON imported_customers ((COALESCE(last_invited_at, invited_at))) WHERE status = 'invited';
