-- 0013: several daemons on one database. Each running daemon is an *instance*: it takes an id
-- from onboardd_instance_seq and holds the session-level advisory lock
-- (ONBOARDD_LIVENESS_CLASS, id) for as long as its database session lives
-- (onboardd.cluster.membership). pg_locks is therefore the list of live instances: when a
-- daemon dies (kill -9, power, lost network) PostgreSQL ends its session and the lock is gone,
-- with no heartbeat to time out. A claim records the instance holding it (claimed_by), so a
-- sweeper can tell a dead holder's claims (taken over in seconds) from a live, slow one's
-- (never taken over before its lease runs out).
--
-- onboardd_instances is for operators (which instances exist, since when, on which host); the
-- truth about liveness is pg_locks, never this table.

CREATE SEQUENCE onboardd_instance_seq AS integer CYCLE;

CREATE TABLE onboardd_instances (
    id integer PRIMARY KEY,
    host varchar(255) NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX onboardd_instances_last_seen_idx ON onboardd_instances (last_seen_at);

-- The instance holding a message's send lease, and a fencing token that changes with every
-- claim and every takeover: an outcome is applied only while the row still carries the token
-- of the attempt it reports (a late answer of a taken-over attempt changes nothing).
ALTER TABLE invitation_messages
    ADD COLUMN claimed_by integer,
    ADD COLUMN claim_token bigint;
CREATE SEQUENCE onboardd_claim_token_seq AS bigint;

ALTER TABLE customer_import_batches ADD COLUMN claimed_by integer;

-- The ids of the live instances of this database: those whose session holds their liveness
-- lock (class 1869504100 = onboardd.cluster.membership.LIVENESS_CLASS, objsubid 2: the
-- two-integer form of pg_advisory_lock).
CREATE FUNCTION onboardd_live_instances() RETURNS SETOF integer
LANGUAGE sql STABLE AS $$
    SELECT objid::bigint::integer FROM pg_locks
    WHERE locktype = 'advisory' AND classid = 1869504100 AND objsubid = 2 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
$$;

-- Who last held each sender (channel:number) and when it let go, so that a new owner waits only
-- as long as the previous owner's requests may still share a one-second window with its own
-- (onboardd.cluster.membership): not at all for a sender nobody held, until one second after a
-- clean release, and until the vanished owner's last heartbeat plus the time it takes an
-- instance to notice it lost its session otherwise.
CREATE TABLE onboardd_senders (
    key varchar(100) PRIMARY KEY,
    owner integer,
    taken_at timestamptz,
    released_at timestamptz
);
