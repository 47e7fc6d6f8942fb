-- A map item's outcome is appended, not updated: one row per finished item in jobs.map_result, written by the
-- workers' batches (one INSERT … SELECT FROM unnest … ON CONFLICT DO NOTHING per batch). Updating jobs.map_item in
-- place rewrote every item row (its seq index ruled out HOT updates) and every batch first took the map's row lock,
-- so that completion numbers were handed out in commit order: a map's batches wrote one after another.
--
-- Completion order is the order of the writing transactions' ids (xid), then index: a completion-order reader reads
-- only rows whose transaction is older than every transaction still running (xid < pg_snapshot_xmin of its own
-- snapshot), so no row can commit later in front of where it has read up to. Writers of one map no longer wait for
-- each other; DELETE /maps/{id} waits for the batches in flight through a per-map advisory lock they hold shared.
-- The primary key keeps one outcome per item: a second one (a chunk re-run while its first run still wrote) is
-- dropped by ON CONFLICT DO NOTHING.
CREATE TABLE jobs.map_result (
    map_id  uuid     NOT NULL,
    index   integer  NOT NULL,
    state   smallint NOT NULL CHECK (state IN (1, 2, 3)),  -- 1 succeeded, 2 failed, 3 canceled
    result  json,                                        -- as sent (see 0009)
    error   jsonb,
    tuples  jsonb,                                       -- where the result held Python tuples: its pointers (see 0012)
    xid     xid8     NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (map_id, index)
);
CREATE INDEX map_result_completion_idx ON jobs.map_result (map_id, xid, index);
CREATE INDEX map_result_failed_idx ON jobs.map_result (map_id, index) WHERE state = 2;
CREATE INDEX map_result_tuples_idx ON jobs.map_result (map_id, index) WHERE tuples IS NOT NULL;

-- A map's counts while it runs: each batch adds its outcomes to a row of its own database session (slot: the
-- backend's pid), so two batches never wait on one row; GET /maps/{id} adds them to jobs.map's counts, which the
-- map's end (and DELETE /maps/{id}) fold them into.
CREATE TABLE jobs.map_tally (
    map_id    uuid    NOT NULL,
    slot      integer NOT NULL,
    succeeded integer NOT NULL DEFAULT 0,
    failed    integer NOT NULL DEFAULT 0,
    canceled  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (map_id, slot)
);

-- Outcomes already stored move over (all in this transaction: a completion-order stream open across the upgrade
-- reads those it had not read yet in index order).
INSERT INTO jobs.map_result (map_id, index, state, result, error, tuples)
SELECT map_id, index, state, result, error, tuples -> 'result' FROM jobs.map_item WHERE state <> 0;
UPDATE jobs.map_item SET tuples = nullif(tuples - 'result', '{}'::jsonb) WHERE tuples ? 'result';

DROP INDEX jobs.map_item_result_tuples_idx;
DROP INDEX jobs.map_item_seq_idx;
DROP INDEX jobs.map_item_failed_idx;
ALTER TABLE jobs.map_item DROP COLUMN state, DROP COLUMN result, DROP COLUMN error, DROP COLUMN seq;
DROP SEQUENCE jobs.map_item_seq;
