-- Issue 26: each run of a job has an id of its own, written by its claim. Every later write of that run (its outcome,
-- its progress, its hand-back) matches it, so a run that lost its job — its worker cut off for longer than
-- Worker:InvisibilityTimeout, the job rescued and claimed again elsewhere — can no longer change the row when its link
-- heals. Nullable, no default: adding it rewrites nothing.
ALTER TABLE jobs.job ADD COLUMN run_id uuid;
