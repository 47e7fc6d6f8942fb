-- Poison-job quarantine: a run that never finished because its worker process died is counted, so a job that
-- kills its worker is not re-run forever (Hangfire #2505). A graceful shutdown hands the job back uncounted.
ALTER TABLE jobs.job ADD COLUMN crashes integer NOT NULL DEFAULT 0;
ALTER TABLE jobs.map_chunk ADD COLUMN crashes integer NOT NULL DEFAULT 0;
