-- A map's per-item timeout (timeoutSeconds of POST /maps, else the function's default): an item running longer fails
-- with JobTimeoutException and the chunk goes on, as a single job's timeout does.
ALTER TABLE jobs.map ADD COLUMN timeout_seconds double precision;
