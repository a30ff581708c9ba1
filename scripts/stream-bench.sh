#!/usr/bin/env bash
# Events/s stored through a Redis stream (the `[stream]` consumer, docs/POSTGRES.md "Streaming
# ingestion") vs through POST /v1/events, on this machine, embedded store, fsync on. Starts a
# throwaway redis-server (free loopback port, temporary folder, no persistence) and one
# `cairn serve` on a fresh data directory whose consumer reads `bench:events`; then
# scripts/stream_bench.py posts and streams new events and prints one JSON line per figure.
#
#   scripts/stream-bench.sh                     # the debug binary (cargo build -p cairn-cli)
#   PROFILE=release scripts/stream-bench.sh     # the release binary
#
# Environment (all optional): PROFILE (debug), NO_BUILD=1 (use the binary as built), EVENTS
# (20000, per batched phase), SINGLE_EVENTS (2000, one event per request), BATCH (100: events per
# request and the consumer's stream.batch), ITEMS (500), RESULTS (file the lines are appended to).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PROFILE=${PROFILE:-debug}
BATCH=${BATCH:-100}
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "stream-bench.sh: needs redis-server and redis-cli (apt-get install redis-server)" >&2
    exit 2
fi
if [[ -z ${NO_BUILD:-} ]]; then
    if [[ $PROFILE == release ]]; then
        nice -n 10 cargo build --release -p cairn-cli
    else
        nice -n 10 cargo build -p cairn-cli
    fi
fi
CAIRN=$ROOT/target/$PROFILE/cairn
WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
HTTP_PORT=$(free_port)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK/redis" \
    >"$WORK/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

CAIRN_DATA_DIR=$WORK/data CAIRN_SERVER__PORT=$HTTP_PORT CAIRN_TRAIN__INTERVAL_SECS=0 \
CAIRN_STREAM__REDIS_URL=redis://127.0.0.1:$REDIS_PORT CAIRN_STREAM__KEY=bench:events \
CAIRN_STREAM__BATCH=$BATCH CAIRN_LOG=warn \
    "$CAIRN" serve >"$WORK/cairn.log" 2>&1 &
pids+=($!)

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
LABEL="$PROFILE build, $cpu, $(nproc) cores shared with other work, $(date -u +%Y-%m-%d), redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
CAIRN_URL=http://127.0.0.1:$HTTP_PORT REDIS_PORT=$REDIS_PORT BATCH=$BATCH LABEL=$LABEL \
    python3 scripts/stream_bench.py | tee -a "${RESULTS:-/dev/null}"
