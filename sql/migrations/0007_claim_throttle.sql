-- 0007: the miss counters of claims by offer code (README, "Offer codes cannot be guessed").
-- One row per key: kind 'user' (the token's sub) or 'ip' (the client address, an IPv6 /64).
-- Every daemon sharing this database counts the same misses: a claim locks its keys' rows,
-- updates them and commits before it looks at the code. Rows without an attempt for
-- [offers] claim_memory_s (and not locked) are pruned by the scheduler's offer_expiry job.
CREATE TABLE offer_claim_throttle (
    kind varchar(8) NOT NULL,
    subject varchar(200) NOT NULL,
    misses integer NOT NULL DEFAULT 0,
    window_started_at timestamptz,
    lockouts integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    last_attempt_at timestamptz,
    PRIMARY KEY (kind, subject),
    CONSTRAINT offer_claim_throttle_kind_check CHECK (kind IN ('user', 'ip'))
);
CREATE INDEX offer_claim_throttle_last_attempt_idx ON offer_claim_throttle (last_attempt_at);
