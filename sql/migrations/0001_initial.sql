-- 0001: every table of spec §1, the host app's minimal tables, the registration outbox,
-- encrypted PII columns, offer codes, and the bookkeeping the actors need.
-- Deviations from spec §1 are listed in README.md ("Schema"), each with its reason.

-- Host app tables (created only when the host app has not already created them) ---------------

CREATE TABLE IF NOT EXISTS salons (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid()::text,
    name varchar(255) NOT NULL,
    country varchar(2) NOT NULL DEFAULT 'IN',
    timezone varchar(64) NOT NULL DEFAULT 'Asia/Kolkata',
    app_download_link varchar(500),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid()::text,
    phone varchar(32),
    name varchar(255),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS bookings (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid()::text,
    salon_id varchar NOT NULL REFERENCES salons (id) ON DELETE CASCADE,
    user_id varchar NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amount_in_paisa integer NOT NULL CHECK (amount_in_paisa >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Registration outbox: the host app inserts a user, the trigger records it and wakes the matcher.

CREATE TABLE registration_events (
    id bigserial PRIMARY KEY,
    user_id varchar NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    processed_at timestamptz,
    matched_count integer,
    attempts integer NOT NULL DEFAULT 0,
    last_error text
);
CREATE INDEX registration_events_unprocessed_idx
    ON registration_events (id) WHERE processed_at IS NULL;

CREATE FUNCTION onboardd_registration_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint;
BEGIN
    INSERT INTO registration_events (user_id) VALUES (NEW.id) RETURNING id INTO event_id;
    PERFORM pg_notify('onboardd_registration', event_id::text);
    RETURN NEW;
END;
$$;

CREATE TRIGGER onboardd_users_registered
    AFTER INSERT ON users
    FOR EACH ROW WHEN (NEW.phone IS NOT NULL)
    EXECUTE FUNCTION onboardd_registration_event();

CREATE TRIGGER onboardd_users_phone_changed
    AFTER UPDATE OF phone ON users
    FOR EACH ROW WHEN (NEW.phone IS NOT NULL AND NEW.phone IS DISTINCT FROM OLD.phone)
    EXECUTE FUNCTION onboardd_registration_event();

-- §1.1 customer_import_batches --------------------------------------------------------------

CREATE TABLE customer_import_batches (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid()::text,
    salon_id varchar NOT NULL REFERENCES salons (id) ON DELETE CASCADE,
    imported_by varchar NOT NULL,
    file_name varchar(255),
    total_records integer NOT NULL DEFAULT 0,
    successful_imports integer NOT NULL DEFAULT 0,
    failed_imports integer NOT NULL DEFAULT 0,
    duplicate_skipped integer NOT NULL DEFAULT 0,
    -- preview (awaiting confirmation), processing, completed, failed
    status varchar(20) NOT NULL DEFAULT 'processing',
    error_log jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    -- onboardd additions
    file_kind varchar(8) NOT NULL DEFAULT 'csv',
    file_data bytea,
    mapping jsonb,
    region varchar(2) NOT NULL DEFAULT 'IN',
    confirmed_at timestamptz,
    processed integer NOT NULL DEFAULT 0,
    failure_reason text,
    claimed_until timestamptz,
    CONSTRAINT customer_import_batches_status_check
        CHECK (status IN ('preview', 'processing', 'completed', 'failed'))
);
CREATE INDEX customer_import_batches_salon_idx ON customer_import_batches (salon_id, created_at);
CREATE INDEX customer_import_batches_work_idx
    ON customer_import_batches (confirmed_at) WHERE status = 'processing';

-- §1.2 imported_customers -------------------------------------------------------------------

CREATE TABLE imported_customers (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid()::text,
    salon_id varchar NOT NULL REFERENCES salons (id) ON DELETE CASCADE,
    import_batch_id varchar REFERENCES customer_import_batches (id) ON DELETE SET NULL,
    customer_name varchar(255) NOT NULL,
    -- phone, email and normalized_phone are stored encrypted (pii.py); phone_hash matches.
    phone_enc text NOT NULL,
    email_enc text,
    normalized_phone_enc text NOT NULL,
    phone_hash bytea NOT NULL,
    -- pending, invited, registered, expired, opted_out
    status varchar(20) NOT NULL DEFAULT 'pending',
    invited_at timestamptz,
    registered_at timestamptz,
    linked_user_id varchar REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- onboardd additions
    source_row integer,
    offer_code varchar(20) UNIQUE,
    download_token varchar(32) UNIQUE,
    last_campaign_id varchar,
    last_invited_at timestamptz,
    opted_out_at timestamptz,
    CONSTRAINT imported_customers_salon_phone_unique UNIQUE (salon_id, phone_hash),
    CONSTRAINT imported_customers_status_check
        CHECK (status IN ('pending', 'invited', 'registered', 'expired', 'opted_out'))
);
CREATE INDEX imported_customers_normalized_phone_idx ON imported_customers (phone_hash);
CREATE INDEX imported_customers_salon_list_idx ON imported_customers (salon_id, created_at, id);
CREATE INDEX imported_customers_batch_idx ON imported_customers (import_batch_id);

-- §1.5 welcome_offers (before campaigns, which reference it) ---------------------------------

CREATE TABLE welcome_offers (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid()::text,
    salon_id varchar NOT NULL REFERENCES salons (id) ON DELETE CASCADE,
    name varchar(255) NOT NULL,
    discount_type varchar(20) NOT NULL,
    discount_value integer NOT NULL,
    max_discount_in_paisa integer,
    minimum_purchase_in_paisa integer,
    validity_days integer NOT NULL DEFAULT 30,
    usage_limit integer NOT NULL DEFAULT 1,
    is_active integer NOT NULL DEFAULT 1,
    total_redemptions integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT welcome_offers_type_check CHECK (discount_type IN ('percentage', 'fixed')),
    CONSTRAINT welcome_offers_value_check CHECK (
        (discount_type = 'percentage' AND discount_value BETWEEN 1 AND 100)
        OR (discount_type = 'fixed' AND discount_value > 0)),
    CONSTRAINT welcome_offers_validity_check CHECK (validity_days BETWEEN 1 AND 365),
    CONSTRAINT welcome_offers_usage_check CHECK (usage_limit >= 1),
    CONSTRAINT welcome_offers_active_check CHECK (is_active IN (0, 1))
);
CREATE INDEX welcome_offers_salon_idx ON welcome_offers (salon_id, created_at);

-- §1.3 invitation_campaigns -----------------------------------------------------------------

CREATE TABLE invitation_campaigns (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid()::text,
    salon_id varchar NOT NULL REFERENCES salons (id) ON DELETE CASCADE,
    name varchar(255) NOT NULL,
    channel varchar(20) NOT NULL DEFAULT 'whatsapp',
    message_template text NOT NULL,
    welcome_offer_id varchar REFERENCES welcome_offers (id),
    -- draft, scheduled, sending, completed, paused
    status varchar(20) NOT NULL DEFAULT 'draft',
    scheduled_for timestamptz,
    target_customer_count integer NOT NULL DEFAULT 0,
    messages_sent integer NOT NULL DEFAULT 0,
    messages_delivered integer NOT NULL DEFAULT 0,
    messages_failed integer NOT NULL DEFAULT 0,
    created_by varchar NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    -- onboardd additions
    whatsapp_content_sid varchar(64),
    audience jsonb NOT NULL DEFAULT '{}'::jsonb,
    messages_read integer NOT NULL DEFAULT 0,
    messages_skipped integer NOT NULL DEFAULT 0,
    paused_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invitation_campaigns_channel_check CHECK (channel IN ('whatsapp', 'sms', 'both')),
    CONSTRAINT invitation_campaigns_status_check
        CHECK (status IN ('draft', 'scheduled', 'sending', 'completed', 'paused'))
);
CREATE INDEX invitation_campaigns_salon_idx ON invitation_campaigns (salon_id, created_at);
CREATE INDEX invitation_campaigns_due_idx
    ON invitation_campaigns (scheduled_for) WHERE status = 'scheduled';
-- Spec §9.2: one campaign at a time per salon, enforced by the database.
CREATE UNIQUE INDEX invitation_campaigns_one_sending_per_salon
    ON invitation_campaigns (salon_id) WHERE status = 'sending';

ALTER TABLE imported_customers
    ADD CONSTRAINT imported_customers_last_campaign_fk
    FOREIGN KEY (last_campaign_id) REFERENCES invitation_campaigns (id) ON DELETE SET NULL;

-- §1.4 invitation_messages ------------------------------------------------------------------

CREATE TABLE invitation_messages (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid()::text,
    campaign_id varchar NOT NULL REFERENCES invitation_campaigns (id) ON DELETE CASCADE,
    imported_customer_id varchar NOT NULL REFERENCES imported_customers (id) ON DELETE CASCADE,
    channel varchar(20) NOT NULL,
    twilio_message_sid varchar(50),
    -- pending, sending (request in flight), queued, sent, delivered, read, failed,
    -- undelivered, skipped
    status varchar(20) NOT NULL DEFAULT 'pending',
    error_message text,
    sent_at timestamptz,
    delivered_at timestamptz,
    read_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- onboardd additions
    salon_id varchar NOT NULL REFERENCES salons (id) ON DELETE CASCADE,
    error_code integer,
    skip_reason varchar(40),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    sender varchar(64),
    fallback_from varchar(20),
    queued_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invitation_messages_one_per_customer UNIQUE (campaign_id, imported_customer_id),
    CONSTRAINT invitation_messages_channel_check CHECK (channel IN ('whatsapp', 'sms')),
    CONSTRAINT invitation_messages_status_check CHECK (status IN (
        'pending', 'sending', 'queued', 'sent', 'delivered', 'read', 'failed', 'undelivered',
        'skipped'))
);
CREATE UNIQUE INDEX invitation_messages_sid_idx
    ON invitation_messages (twilio_message_sid) WHERE twilio_message_sid IS NOT NULL;
CREATE INDEX invitation_messages_due_idx
    ON invitation_messages (next_attempt_at) WHERE status = 'pending';
CREATE INDEX invitation_messages_inflight_idx
    ON invitation_messages (claimed_until) WHERE status = 'sending';
CREATE INDEX invitation_messages_campaign_status_idx
    ON invitation_messages (campaign_id, status);
CREATE INDEX invitation_messages_customer_idx
    ON invitation_messages (imported_customer_id, sent_at);

-- §1.6 welcome_offer_redemptions ------------------------------------------------------------

CREATE TABLE welcome_offer_redemptions (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid()::text,
    welcome_offer_id varchar NOT NULL REFERENCES welcome_offers (id) ON DELETE CASCADE,
    user_id varchar NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    imported_customer_id varchar REFERENCES imported_customers (id) ON DELETE SET NULL,
    booking_id varchar,
    discount_applied_in_paisa integer NOT NULL,
    expires_at timestamptz NOT NULL,
    redeemed_at timestamptz,
    -- active, redeemed, expired
    status varchar(20) NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT welcome_offer_redemptions_status_check
        CHECK (status IN ('active', 'redeemed', 'expired'))
);
-- One open (not yet used) grant per user and offer; each booking uses an offer at most once.
CREATE UNIQUE INDEX welcome_offer_redemptions_open_grant
    ON welcome_offer_redemptions (welcome_offer_id, user_id) WHERE booking_id IS NULL;
CREATE UNIQUE INDEX welcome_offer_redemptions_booking
    ON welcome_offer_redemptions (welcome_offer_id, booking_id) WHERE booking_id IS NOT NULL;
CREATE INDEX welcome_offer_redemptions_user_idx ON welcome_offer_redemptions (user_id);
CREATE INDEX welcome_offer_redemptions_expiry_idx
    ON welcome_offer_redemptions (expires_at) WHERE status = 'active';

-- Opt-outs (STOP words, Twilio 21610): per phone and sender, across every salon and campaign.

CREATE TABLE opt_outs (
    phone_hash bytea NOT NULL,
    sender varchar(64) NOT NULL,
    opted_out_at timestamptz NOT NULL DEFAULT now(),
    source varchar(20) NOT NULL,
    PRIMARY KEY (phone_hash, sender)
);

CREATE TABLE inbound_messages (
    id bigserial PRIMARY KEY,
    message_sid varchar(50) UNIQUE,
    phone_hash bytea NOT NULL,
    sender varchar(64) NOT NULL,
    keyword varchar(10) NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Who read decrypted PII through the API (spec §9.1).

CREATE TABLE pii_access_log (
    id bigserial PRIMARY KEY,
    actor varchar NOT NULL,
    salon_id varchar,
    action varchar(40) NOT NULL,
    record_count integer NOT NULL DEFAULT 0,
    details jsonb,
    request_id varchar(64),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pii_access_log_salon_idx ON pii_access_log (salon_id, created_at);
