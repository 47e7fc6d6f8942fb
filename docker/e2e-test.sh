#!/usr/bin/env bash
# End to end on containers: builds the images from docker/, brings the stack up (PostgreSQL, migrate, API,
# worker) with the host-network test override on free 127.0.0.1 ports, submits a job through the containerized
# API, sees a containerized worker run it and a Python function of a module mounted into it (python3 in the worker
# image), scrapes the worker's metrics, scales the workers to 2, and tears everything down.
# Needs a Docker engine and the base images (on this machine: ../shared/docker/standins.sh starts both).
# Prints "docker e2e: passed" or fails with the reason.
set -euo pipefail
cd "$(dirname "$0")"
# The engine refuses published ports on the host network, and an override cannot remove them: the test runs a
# copy of compose.yaml without its "ports:" entry (beside it, so relative build contexts still resolve).
base=".compose.e2e-$$.yaml"
sed '/^    ports:$/,+1d' compose.yaml > "$base"
compose() { docker-compose -p "$project" -f "$base" -f compose.test.yaml "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
project="jobs-e2e-$$"
export POSTGRES_TAG=15 POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=$(free_port) API_PORT=$(free_port) JOBS_TAG="e2e-$$"
export WORKER_METRICS_PORT=$(free_port)
export POSTGRES_PASSWORD="pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
key="key-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export JOBS_API_KEY_SHA256=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
api="http://127.0.0.1:$API_PORT"
cleanup() {
  compose down -v >/dev/null 2>&1 || true
  docker rmi -f "jobs-api:$JOBS_TAG" "jobs-worker:$JOBS_TAG" >/dev/null 2>&1 || true
  rm -f "$base"
}
# On failure the containers' logs come first and the reason last, where whoever reads only the tail of CI sees it.
reason=""
fail() { reason=$1; exit 1; }
trap '[ -n "$reason" ] || reason="the command at line $LINENO failed"' ERR
trap 'status=$?; if [ $status -ne 0 ]; then compose logs --tail=50 >&2; echo "docker e2e: FAILED: ${reason:-exit $status}" >&2; fi; cleanup; exit $status' EXIT

echo "docker e2e: building images"
compose build --quiet
echo "docker e2e: starting PostgreSQL, migrate, API, 1 worker"
compose up -d --scale worker=1
for _ in $(seq 1 90); do curl -fsS "$api/health/ready" >/dev/null 2>&1 && break; sleep 1; done
curl -fsS "$api/health/ready" >/dev/null

echo "docker e2e: submitting math.square(12) through the containerized API"
job=$(curl -fsS -X POST "$api/jobs?wait=30" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"function":"math.square","args":[12]}')
echo "$job" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["state"]=="succeeded" and j["result"]==144, j; print("docker e2e: job", j["id"], "succeeded with", j["result"])'

echo "docker e2e: submitting py:pool_examples.square(12): python3 in the worker image, the module mounted at /modules"
for _ in $(seq 1 30); do curl -fsS "$api/functions/py:pool_examples.square" -H "Authorization: Bearer $key" >/dev/null 2>&1 && break; sleep 1; done
job=$(curl -fsS -X POST "$api/jobs?wait=30" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"function":"py:pool_examples.square","args":[12]}')
echo "$job" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["state"]=="succeeded" and j["result"]==144, j; print("docker e2e: job", j["id"], "succeeded with", j["result"])'

# The worker serves its metrics on every address of its container (Worker__MetricsHost "*"): here the host's.
finished=$(curl -fsS "http://127.0.0.1:$WORKER_METRICS_PORT/metrics" | grep -E '^jobs_finished_total\{.*outcome="succeeded"' || true)
[ -n "$finished" ] || fail "the worker's /metrics on port $WORKER_METRICS_PORT counts no finished job"
echo "docker e2e: the worker's metrics: $(echo "$finished" | head -1)"

echo "docker e2e: scaling workers to 2"
# On the host network two replicas cannot share one metrics port (on compose's own network each has its address):
# the second gets a port of its own; --no-recreate keeps the first as it is.
second_metrics=$(free_port)
WORKER_METRICS_PORT=$second_metrics compose up -d --no-recreate --scale worker=2
servers=0
for _ in $(seq 1 60); do
  servers=$(curl -fsS "$api/pool" -H "Authorization: Bearer $key" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["servers"]))')
  [ "$servers" -ge 2 ] && break; sleep 1
done
[ "$servers" -ge 2 ] || fail "expected 2 worker servers, saw $servers"
ids=$(for i in $(seq 1 20); do curl -fsS -X POST "$api/jobs" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d "{\"function\":\"math.square\",\"args\":[$i]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; done)
for id in $ids; do
  curl -fsS "$api/jobs/$id?wait=30" -H "Authorization: Bearer $key" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["state"]=="succeeded", j'
done
echo "docker e2e: 2 workers serving; 20 more jobs succeeded"
for port in "$WORKER_METRICS_PORT" "$second_metrics"; do
  # Read whole before grep: "curl | grep -q" under pipefail fails whenever grep stops reading before curl is done
  # writing (curl's exit 23) — a race that failed CI once with both workers' metrics there.
  scraped=$(curl -fsS "http://127.0.0.1:$port/metrics") || fail "no answer from worker metrics on port $port"
  grep -q '^jobs_in_flight' <<<"$scraped" || fail "no jobs_in_flight in worker metrics on port $port"
done
echo "docker e2e: both workers' metrics scraped"
cleanup
trap - EXIT
echo "docker e2e: passed"
