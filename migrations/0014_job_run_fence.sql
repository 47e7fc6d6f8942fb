-- Issue 26: each run of a job has an id of its own, written by its claim. Every later write of that run (its outcome,
-- its progress, its hand-back) matches it, so a run that lost its job — its worker cut off for longer than
-- Worker:InvisibilityTimeout, the job rescued and claimed again elsewhere — can no longer change the row when its link
-- heals. Nullable, no default: adding it rewrites nothing.
ALTER TABLE jobs.job ADD COLUMN run_id uuid;
-- Likewise for a map's chunks: the run that claimed a chunk last (or carried on with it) is the only one whose
-- release, end and item outcomes count.
ALTER TABLE jobs.map_chunk ADD COLUMN run_id uuid;
