-- Queues an operator paused (POST /queues/{name}/pause): workers fetch nothing from them until resumed; jobs are still
-- accepted and wait. Read by the workers' fetch (WorkQueue), one row per paused queue.
CREATE TABLE jobs.paused_queue (
    queue     text PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now()
);
