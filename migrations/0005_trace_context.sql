-- The W3C traceparent of the request that submitted a job, so the worker's run joins the submitter's trace.
ALTER TABLE jobs.job ADD COLUMN trace_parent text;
