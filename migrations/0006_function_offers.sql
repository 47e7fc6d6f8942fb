-- Functions that live workers offer beyond the .NET ones every process knows (Python modules): a worker upserts
-- its offers every few seconds and deletes them when it stops; the API accepts such a function only while at
-- least one offer of it is fresh.
CREATE TABLE jobs.function_offer (
    name        text        NOT NULL,
    worker      text        NOT NULL,
    definition  jsonb       NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, worker)
);
