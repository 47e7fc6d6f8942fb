-- Pool's remaining verbs for single jobs: delays, timeouts, retries, cancel, callbacks, idempotent submission,
-- recurring schedules.
ALTER TABLE jobs.job
    ADD COLUMN run_at               timestamptz,          -- delaySeconds / runAt, and the next retry
    ADD COLUMN timeout_seconds      double precision,     -- null: no timeout
    ADD COLUMN max_retries          integer NOT NULL DEFAULT 0,
    ADD COLUMN cancel_requested_at  timestamptz,          -- DELETE /jobs/{id} on a running job
    ADD COLUMN callback_url         text,
    ADD COLUMN callback             jsonb,                -- { status, attempts, lastError, deliveredAt }
    ADD COLUMN schedule_name        text;                 -- set when a recurring schedule created the job

-- Finished jobs whose callback was never handed to the sender (worker died in between): the sweeper's other list.
CREATE INDEX job_callback_pending_idx ON jobs.job (finished_at)
    WHERE callback_url IS NOT NULL AND callback IS NULL AND finished_at IS NOT NULL;

-- Idempotency-Key: the unique key is what makes concurrent duplicates collapse into one job.
CREATE TABLE jobs.idempotency_key (
    key           text        PRIMARY KEY,
    request_hash  bytea       NOT NULL,                   -- SHA-256 of the normalised request
    job_id        uuid,
    map_id        uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX idempotency_key_expires_idx ON jobs.idempotency_key (expires_at);

-- Recurring schedules (Hangfire recurring jobs that submit a job each time they fire).
CREATE TABLE jobs.schedule (
    name        text        PRIMARY KEY,
    cron        text        NOT NULL,
    time_zone   text        NOT NULL,
    function    text        NOT NULL,
    args        jsonb       NOT NULL,
    kwargs      jsonb       NOT NULL,
    queue       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The dashboard's job page looks a row up by the Hangfire job that carries it.
CREATE INDEX job_hangfire_job_idx ON jobs.job (hangfire_job_id) WHERE hangfire_job_id IS NOT NULL;
