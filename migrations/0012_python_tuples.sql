-- Python's tuples, for the Python client and Python functions only: JSON has arrays, so a tuple is stored as an array
-- (what every other client reads) and its place is kept beside the value as a JSON Pointer (RFC 6901): "" the value
-- itself, "/0/1" the second element of the first. {"args": [...], "kwargs": [...], "result": [...]}, each present
-- only when it holds a pointer; NULL (the usual case) when no value of the job holds a tuple.
ALTER TABLE jobs.job ADD COLUMN tuples jsonb;
-- A map item's: {"args": [...], "kwargs": [...], "result": [...]} (the map's kwargs pointers repeated in each item that
-- has any, so a chunk reads an item's whole call from its row).
ALTER TABLE jobs.map_item ADD COLUMN tuples jsonb;
-- GET /maps/{id}/results looks up the items whose result held tuples after copying the results: an index probe, not a
-- second pass over every item of the map (almost always there are none).
CREATE INDEX map_item_result_tuples_idx ON jobs.map_item (map_id, index) WHERE tuples ? 'result';
