-- A map's chunks enter the queue through a window (fair share of the worker slots): at most dispatch_window chunks
-- of a map are handed to Hangfire and unfinished at once; the chunks below next_chunk have been given a turn
-- (dispatched_at set), the rest wait for one. A chunk that finishes gives its turn to the next, which so enters the
-- queue behind whatever other clients queued meanwhile.
ALTER TABLE jobs.map ADD COLUMN dispatch_window integer, ADD COLUMN next_chunk integer NOT NULL DEFAULT 0;
-- Maps stored before had every chunk handed to Hangfire at submission (or left to the sweeper): all have had their turn.
UPDATE jobs.map SET dispatch_window = greatest(chunks, 1), next_chunk = chunks;
UPDATE jobs.map_chunk SET dispatched_at = created_at WHERE dispatched_at IS NULL AND state = 'enqueued';
ALTER TABLE jobs.map ALTER COLUMN dispatch_window SET NOT NULL;
-- The chunks of a map that have their turn and are not finished: counted on every chunk's end.
CREATE INDEX map_chunk_in_flight_idx ON jobs.map_chunk (map_id) WHERE state IN ('enqueued', 'processing') AND dispatched_at IS NOT NULL;
-- Chunks waiting for their turn are not late: nothing looks for them by age any more.
DROP INDEX jobs.map_chunk_undispatched_idx;
-- DELETE /maps/{id} answers at once, whatever the map's size: the map, its counts and its running chunks end in the
-- request; its items without an outcome are marked canceled afterwards, in index order and in batches, from
-- unsettled_from on (NULL: nothing left). Readers take such an item of a canceled map as canceled already.
ALTER TABLE jobs.map ADD COLUMN unsettled_from integer;
CREATE INDEX map_unsettled_idx ON jobs.map (cancel_requested_at) WHERE unsettled_from IS NOT NULL;
