// The benchmark's graphile-worker side (run by ../GraphileScenario.cs, or by hand):
//   node bench.mjs --connection postgres://… [--jobs 5000] [--concurrency 64] [--pool 10] [--latency 300]
//                  [--worker-concurrency 10] [--slots 4] [--warmup 2000] [--backlog 6000] [--only single,bulk,latency]
// graphile-worker 0.18 as its README runs it: one Node process, direct SQL (add_job / add_jobs, its own schema
// graphile_worker in a database of its own), a worker pool woken by LISTEN/NOTIFY. The same no-op workload and
// the same definitions as the Jobs side (JobsScenario.cs):
//   single:  workers running; N jobs added one addJob at a time by K concurrent callers (sharing a pg pool of
//            --pool connections); jobs/s from the first add to the last completion (the jobs table empty,
//            polled every 20 ms, as Jobs polls its succeeded count), and adds accepted/s;
//   bulk:    --backlog jobs (default N) in one addJobs call, then a worker pool starts: jobs/s add → last completion,
//            processing jobs/s from the pool's start, and processing-only jobs/s from the first task's start (what
//            Jobs' backlog drain is compared with), with --worker-concurrency and again with --slots (Jobs' total slots);
//   latency: workers idle; S sequential jobs, each added after the previous one completed: add→start (the task
//            records performance.now() against the stamp taken just before addJob was called; one clock, one
//            process) and add→completion (the job's row gone, polled every 1 ms on a connection of its own).
// Prints ONE JSON object on stdout; diagnostics go to stderr. Exit code 1 on failure.
process.env.NO_LOG_SUCCESS = "1"; // graphile's own switch: no info line per job (read when the library loads)
const { run, makeWorkerUtils, runMigrations, Logger } = await import("graphile-worker");
const { default: pg } = await import("pg");
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) =>
  a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs, []));
const connectionString = args.connection ?? process.env.GRAPHILE_BENCH_CONNECTION ?? process.env.DATABASE_URL;
const int = (name, fallback) => (args[name] === undefined ? fallback : Number.parseInt(args[name], 10));
const jobs = int("jobs", 5000);
const callers = int("concurrency", 64);
const pool = int("pool", 10); // node-postgres' default, graphile's default maxPoolSize
const samples = int("latency", 300);
const workerConcurrency = int("worker-concurrency", 10);
const slots = int("slots", 0);
const warmup = int("warmup", 2000);
const backlog = int("backlog", jobs);
const only = (args.only ?? "single,bulk,latency").split(",");
if (!connectionString) {
  console.error("bench.mjs: no connection string (--connection, GRAPHILE_BENCH_CONNECTION or DATABASE_URL)");
  process.exit(2);
}

const say = (m) => console.error(`graphile: ${m}`);
// graphile's own warnings and errors to stderr; its info/debug lines (one per worker start/stop) dropped.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`graphile-worker ${level}: ${message}`);
});

const startedAt = new Map(); // latency: job number → performance.now() when its task started
let firstDrained; // bulk: performance.now() when the backlog's first task started
const tasks = {
  noop: async () => {},
  drain: async () => { firstDrained ??= performance.now(); },
  latency: async (payload) => { startedAt.set(payload.i, performance.now()); },
};

const monitor = new pg.Client({ connectionString });
let utils;
const runners = new Set();
async function startWorkers(concurrency) {
  const runner = await run({ connectionString, concurrency, noHandleSignals: true, logger, taskList: tasks });
  runners.add(runner);
  return runner;
}
async function stopWorkers(runner) {
  runners.delete(runner);
  await runner.stop();
  await runner.promise;
}

const remaining = async () => Number((await monitor.query("select count(*) from graphile_worker._private_jobs")).rows[0].count);
async function waitForEmpty(what) {
  let [last, since] = [-1, performance.now()];
  for (let left; (left = await remaining()) > 0; await sleep(20)) {
    if (left !== last) [last, since] = [left, performance.now()];
    else if (performance.now() - since > 60_000) throw new Error(`${what}: no job finished for 60 s, ${left} left`);
  }
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** N single addJob calls from `callers` concurrent callers, each one add at a time. */
async function addMany(count) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(callers, count) }, async () => {
    while (next < count) {
      next++;
      await utils.addJob("noop", {});
    }
  }));
}

function percentiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return sorted.length === 0 ? null : { p50: at(0.5), p95: at(0.95), p99: at(0.99), count: sorted.length };
}

const result = {
  version: JSON.parse(readFileSync(new URL("./node_modules/graphile-worker/package.json", import.meta.url), "utf8")).version,
  node: process.version, jobs, callers, pool, workerConcurrency, slots, warmup, backlog,
};
try {
  await monitor.connect();
  await runMigrations({ connectionString, logger });
  utils = await makeWorkerUtils({ connectionString, maxPoolSize: pool, logger });

  if (only.includes("single")) {
    const runner = await startWorkers(workerConcurrency);
    say(`warm-up: ${warmup} jobs…`);
    await addMany(warmup);
    await waitForEmpty("warm-up");
    say(`single: ${jobs} addJob calls from ${callers} concurrent callers (pool of ${pool}), worker concurrency ${workerConcurrency}…`);
    const t0 = performance.now();
    await addMany(jobs);
    const submitted = performance.now() - t0;
    await waitForEmpty("single");
    const done = performance.now() - t0;
    await stopWorkers(runner);
    Object.assign(result, { jobsPerSecond: jobs / (done / 1000), submissionsPerSecond: jobs / (submitted / 1000) });
    say(`single: added in ${(submitted / 1000).toFixed(2)} s, all done after ${(done / 1000).toFixed(2)} s`);
  }

  if (only.includes("bulk")) {
    result.bulk = [];
    for (const concurrency of [...new Set([workerConcurrency, slots].filter((c) => c > 0))]) {
      say(`bulk: ${backlog} jobs in one addJobs call, then a worker pool of concurrency ${concurrency}…`);
      firstDrained = undefined;
      const t0 = performance.now();
      await utils.addJobs(Array.from({ length: backlog }, () => ({ identifier: "drain", payload: {} })));
      const added = performance.now() - t0;
      const t1 = performance.now();
      const runner = await startWorkers(concurrency);
      await waitForEmpty("bulk");
      const t2 = performance.now();
      await stopWorkers(runner);
      result.bulk.push({
        concurrency, jobs: backlog, addSeconds: added / 1000, addedPerSecond: backlog / (added / 1000),
        jobsPerSecond: backlog / ((t2 - t0) / 1000), processingJobsPerSecond: backlog / ((t2 - t1) / 1000),
        drainJobsPerSecond: backlog / ((t2 - firstDrained) / 1000),
      });
      say(`bulk: added in ${(added / 1000).toFixed(2)} s, processed in ${((t2 - t1) / 1000).toFixed(2)} s (worker start included), ${((t2 - firstDrained) / 1000).toFixed(2)} s from the first task's start`);
    }
  }

  if (only.includes("latency")) {
    const runner = await startWorkers(workerConcurrency);
    for (let i = 0; i < 20; i++) await utils.addJob("noop", {}); // the pool's connections and statements, warm
    await waitForEmpty("latency warm-up");
    await sleep(500);
    say(`latency: ${samples} sequential jobs on an idle worker pool…`);
    const pickup = [];
    const roundTrip = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      const job = await utils.addJob("latency", { i });
      for (;;) {
        const row = await monitor.query({ name: "exists", text: "select 1 from graphile_worker._private_jobs where id = $1", values: [job.id] });
        if (row.rowCount === 0) break;
        if (performance.now() - t0 > 30_000) throw new Error(`latency sample ${i} (job ${job.id}) not finished after 30 s`);
        await sleep(1);
      }
      roundTrip.push(performance.now() - t0);
      if (!startedAt.has(i)) throw new Error(`latency sample ${i}: the job's row is gone but its task never started`);
      pickup.push(startedAt.get(i) - t0);
    }
    await stopWorkers(runner);
    Object.assign(result, { pickup: percentiles(pickup), roundTrip: percentiles(roundTrip) });
  }
} catch (error) {
  console.error(`graphile: FAILED: ${error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  for (const runner of runners) await runner.stop().catch(() => {});
  await utils?.release();
  await monitor.end().catch(() => {});
}
if (process.exitCode !== 1) process.stdout.write(`${JSON.stringify(result)}\n`);
