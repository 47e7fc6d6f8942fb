-- Pool.map / starmap / imap: one row per map, per chunk (one Hangfire job each) and per item. Items and their
-- results are written in batches (COPY on submit, one UPDATE … FROM unnest per flush while running).
CREATE TABLE jobs.map (
    id                  uuid        PRIMARY KEY,
    function            text        NOT NULL,
    kwargs              jsonb       NOT NULL DEFAULT '{}',
    star                boolean     NOT NULL DEFAULT false,
    queue               text        NOT NULL,
    total               integer     NOT NULL,
    chunksize           integer     NOT NULL,
    chunks              integer     NOT NULL,
    state               text        NOT NULL DEFAULT 'enqueued'
                        CHECK (state IN ('enqueued', 'processing', 'succeeded', 'failed', 'canceled')),
    succeeded           integer     NOT NULL DEFAULT 0,
    failed              integer     NOT NULL DEFAULT 0,
    canceled            integer     NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    expires_at          timestamptz,
    cancel_requested_at timestamptz
);
CREATE INDEX map_expires_idx ON jobs.map (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE jobs.map_chunk (
    map_id          uuid        NOT NULL,
    chunk           integer     NOT NULL,
    first_index     integer     NOT NULL,
    end_index       integer     NOT NULL,                 -- exclusive
    state           text        NOT NULL DEFAULT 'enqueued'
                    CHECK (state IN ('enqueued', 'processing', 'done', 'canceled')),
    hangfire_job_id text,                                 -- the Hangfire job that owns the chunk (claimed like jobs.job)
    dispatched_at   timestamptz,
    attempts        integer     NOT NULL DEFAULT 0,
    worker          text,
    started_at      timestamptz,
    finished_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (map_id, chunk)
);
CREATE INDEX map_chunk_undispatched_idx ON jobs.map_chunk (created_at) WHERE dispatched_at IS NULL;

CREATE SEQUENCE jobs.map_item_seq;

CREATE TABLE jobs.map_item (
    map_id  uuid     NOT NULL,
    index   integer  NOT NULL,
    args    jsonb    NOT NULL,                            -- positional arguments: [item] for map, the item for starmap
    state   smallint NOT NULL DEFAULT 0,                  -- 0 pending, 1 succeeded, 2 failed, 3 canceled
    result  jsonb,
    error   jsonb,
    seq     bigint,                                       -- completion order, for imap_unordered
    PRIMARY KEY (map_id, index)
);
CREATE INDEX map_item_seq_idx ON jobs.map_item (map_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX map_item_failed_idx ON jobs.map_item (map_id, index) WHERE state = 2;
