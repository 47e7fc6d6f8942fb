-- The project's own schema: one row per user-visible job (the JobView's source of truth).
-- Hangfire's tables (schema "hangfire") are only the dispatch vehicle; see README "Schema".
CREATE SCHEMA IF NOT EXISTS jobs;

CREATE TABLE jobs.job (
    id              uuid        PRIMARY KEY,            -- UUIDv7: time-ordered, so "newest first" is an index scan
    function        text        NOT NULL,
    args            jsonb       NOT NULL DEFAULT '[]',
    kwargs          jsonb       NOT NULL DEFAULT '{}',
    queue           text        NOT NULL,
    state           text        NOT NULL DEFAULT 'enqueued'
                    CHECK (state IN ('scheduled', 'enqueued', 'processing', 'succeeded', 'failed', 'canceled')),
    result          jsonb,
    error           jsonb,                              -- { type, message, stackTrace }
    progress        jsonb,                              -- { fraction, message }
    attempts        integer     NOT NULL DEFAULT 0,
    -- The Hangfire job that owns execution. The first Hangfire job to run claims the row, so a second
    -- dispatch of the same row (the sweeper racing a slow API) never runs the function twice at once.
    hangfire_job_id text,
    dispatched_at   timestamptz,                        -- set once a Hangfire job exists for this row
    worker          text,                               -- the Hangfire server that ran the last attempt
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    expires_at      timestamptz                         -- set when the job finishes: finished_at + retention
);

CREATE INDEX job_state_idx    ON jobs.job (state, id DESC);
CREATE INDEX job_function_idx ON jobs.job (function, id DESC);
CREATE INDEX job_queue_idx    ON jobs.job (queue, id DESC);
CREATE INDEX job_expires_idx  ON jobs.job (expires_at) WHERE expires_at IS NOT NULL;
-- Rows accepted by the API whose Hangfire job was never created (API died in between): the sweeper's work list.
CREATE INDEX job_undispatched_idx ON jobs.job (created_at) WHERE dispatched_at IS NULL;
