-- The invariant watch reads every unfinished map chunk every 5 s in every worker: without this index that is a scan
-- of every chunk kept for the retention period.
CREATE INDEX map_chunk_unfinished_idx ON jobs.map_chunk (map_id, chunk) WHERE state IN ('enqueued', 'processing');
