#!/usr/bin/env bash
# Start the scale-out example on this machine: Redis and PostgreSQL must be running
# (apt-get install redis-server postgresql); every rendezvous process starts from the same
# deployment file. Ctrl-C stops them all gracefully.
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONPATH="$PWD/../fraud${PYTHONPATH:+:$PYTHONPATH}"  # the rules live with the fraud example
RV=${RV:-rendezvous}
redis-cli -u redis://127.0.0.1:6379 ping >/dev/null || { echo "Redis is not running on 6379"; exit 1; }
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
$RV worker deployment.yaml --model rules --concurrency 2 & pids+=($!)
$RV worker deployment.yaml --model strict & pids+=($!)
$RV archiver deployment.yaml & pids+=($!)
$RV serve deployment.yaml --port 8001 & pids+=($!)
$RV serve deployment.yaml --port 8000 & pids+=($!)
echo "APIs on :8000 and :8001; metrics on /metrics of each"
wait
