-- 0019: the status inbox. A Twilio status callback is durable once it is a row here: the status
-- recorder appends the callbacks of its flush in one INSERT (group commit) and the webhook
-- answers 200 after that commit. The status folder (onboardd.actors.status_folder) then applies
-- the inbox to invitation_messages (their campaign counters and the customers' funnel facts
-- follow, as for any status change) in batches taken in id order, deleting exactly the rows it
-- applied in the same transaction: each callback is applied once, and a crash or a stop at any
-- point leaves it either applied or still here. One instance folds at a time (a transaction
-- advisory lock, class 1869504102, key 0), so callbacks are applied in the order they became
-- durable, as one recorder applied them before.
--
-- A callback whose SID no message carries yet (its send result may still be committing in the
-- status recorder's transaction) is not applied but held: put back with held_since set, and
-- taken again by a later fold once its SID is known (or, past the folder's hold, kept in
-- status_callback_orphans as before); a later callback of a held SID waits with it, so they are
-- applied in order. The partial index finds the held rows (normally none), by SID.
--
-- Insert-only from the webhooks' side, no other index a new row enters: appending a callback
-- costs one heap row and one primary-key entry, where applying it updates a message row (not
-- HOT: its status is indexed) and its seven index entries. The table is meant to hold at most a few seconds of
-- callbacks; its dead rows are vacuumed early.
CREATE TABLE status_inbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid varchar(50) NOT NULL,
    status varchar(20) NOT NULL,
    at timestamptz NOT NULL,
    error_code integer,
    error_message text,
    held_since timestamptz
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000);

CREATE INDEX status_inbox_held_idx ON status_inbox (sid) WHERE held_since IS NOT NULL;
