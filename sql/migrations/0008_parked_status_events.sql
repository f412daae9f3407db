-- 0008: status events the recorder could not apply (issue 10). When a flush fails because of an
-- event itself (a value the database refuses), the status recorder applies that flush one event
-- at a time and parks each event that still fails here, with the error and the event minus PII
-- (free text masked, NULs escaped, long values cut), instead of failing every other event of the
-- flush and, retried, crashing into a loop. Each parked event is also logged once
-- (status_event_parked). An operator reads them here and deletes them once handled.
CREATE TABLE status_events_parked (
    id bigserial PRIMARY KEY,
    parked_at timestamptz NOT NULL DEFAULT now(),
    kind varchar(20) NOT NULL CHECK (kind IN ('send_outcome', 'status_callback')),
    message_id text,
    sid text,
    error text NOT NULL,
    payload jsonb NOT NULL
);

CREATE INDEX status_events_parked_parked_at_idx ON status_events_parked (parked_at);
