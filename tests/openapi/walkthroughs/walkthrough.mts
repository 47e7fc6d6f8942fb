// node out/walkthrough.mjs <API base URL>: the walkthrough with openapi-fetch over the types openapi-typescript
// generates from the live document (generated/schema.d.ts), compiled by tsc --strict (GeneratedClientTests).
import createClient from "openapi-fetch";
import type { paths } from "./generated/schema.js";

class WalkthroughFailed extends Error {}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new WalkthroughFailed(what);
}

const step = (what: string) => console.log(`ok   ${what}`);
const client = createClient<paths>({ baseUrl: process.argv[2].replace(/\/$/, "") });

async function walkthrough(): Promise<void> {
  const functions = await client.GET("/functions");
  check(functions.data !== undefined, `GET /functions: ${functions.response.status}`);
  const pow = functions.data.find((f) => f.name === "math.pow");
  check(pow !== undefined && pow.parameters.length === 2, "math.pow lists its two parameters");
  step(`GET /functions: ${functions.data.length} functions, math.pow(${pow.parameters.map((p) => p.name).join(", ")})`);

  // Not ready yet reads as not ready: the 202's body is the job (it has a state), the 200's the result.
  const sleeping = await client.POST("/jobs", { body: { function: "time.sleep", args: [1.5] } });
  check(sleeping.data !== undefined, `POST /jobs: ${sleeping.response.status}`);
  const id = sleeping.data.id;
  const early = await client.GET("/jobs/{id}/result", { params: { path: { id }, query: { timeout: 0 } } });
  check(early.data !== undefined && early.response.status === 202, `the result at once: ${early.response.status}`);
  check("state" in early.data && !early.data.ready, `the 202 is a job not ready: ${JSON.stringify(early.data)}`);
  step(`GET /jobs/{id}/result?timeout=0 → 202, ${early.data.state}`);
  const slept = await client.GET("/jobs/{id}/result", { params: { path: { id }, query: { timeout: 30 } } });
  check(slept.data !== undefined && !("state" in slept.data), `the result after waiting: ${slept.response.status}`);
  check(slept.data.ready && slept.data.result === 1.5, `time.sleep(1.5)'s result: ${JSON.stringify(slept.data)}`);
  step("GET /jobs/{id}/result?timeout=30 → 200, 1.5");

  const squared = await client.POST("/jobs", { params: { query: { wait: 30 } }, body: { function: "math.square", args: [7] } });
  check(squared.data !== undefined, `POST /jobs?wait=30: ${squared.response.status}`);
  check(squared.data.state === "succeeded" && squared.data.successful === true && squared.data.result === 49,
    `math.square(7): ${JSON.stringify(squared.data)}`);
  step("POST /jobs?wait=30 → succeeded, 49");

  const items = Array.from({ length: 10 }, (_, i) => i + 1);
  const map = await client.POST("/maps", { body: { function: "math.square", items, chunksize: 3 } });
  check(map.data !== undefined && map.data.total === 10, `POST /maps: ${map.response.status}`);
  const results = await client.GET("/maps/{id}/results", { params: { path: { id: map.data.id }, query: { timeout: 30 } } });
  check(results.data !== undefined && "results" in results.data, `the map's results: ${results.response.status}`);
  check(results.data.results.join(",") === "1,4,9,16,25,36,49,64,81,100", `in input order: ${results.data.results.join(",")}`);
  step("POST /maps, GET /maps/{id}/results → 1 … 100 in order");

  const longJob = await client.POST("/jobs", { body: { function: "time.sleep", args: [60] } });
  check(longJob.data !== undefined, `POST /jobs: ${longJob.response.status}`);
  const cancel = await client.DELETE("/jobs/{id}", { params: { path: { id: longJob.data.id } } });
  check(cancel.data !== undefined, `DELETE /jobs/{id}: ${cancel.response.status}`);
  const canceled = await client.GET("/jobs/{id}", { params: { path: { id: longJob.data.id }, query: { wait: 30 } } });
  check(canceled.data?.state === "canceled" && canceled.data.ready && canceled.data.successful === false,
    `the canceled job: ${JSON.stringify(canceled.data)}`);
  step("DELETE /jobs/{id} → canceled");

  const failing = await client.POST("/jobs", { body: { function: "debug.fail", args: ["boom"] } });
  check(failing.data !== undefined, `POST /jobs: ${failing.response.status}`);
  const remote = await client.GET("/jobs/{id}/result", { params: { path: { id: failing.data.id }, query: { timeout: 30 } } });
  check(remote.error !== undefined && remote.response.status === 424, `debug.fail's result: ${remote.response.status}`);
  check("exceptionType" in remote.error && typeof remote.error.exceptionType === "string", `a remote error: ${JSON.stringify(remote.error)}`);
  const { exceptionType, message, jobId } = remote.error;
  check(exceptionType.endsWith("DebugFailureException") && message === "boom" && jobId === failing.data.id,
    `the remote exception: ${JSON.stringify(remote.error)}`);
  step(`GET /jobs/{id}/result → 424, ${exceptionType}: ${message}`);
}

try {
  await walkthrough();
  console.log("walkthrough passed");
} catch (e) {
  console.error(`FAIL ${e instanceof WalkthroughFailed ? e.message : String(e)}`);
  process.exitCode = 1;
}
