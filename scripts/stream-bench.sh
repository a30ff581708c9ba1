#!/usr/bin/env bash
# Events/s stored through a Redis stream (the `[stream]` consumer, docs/POSTGRES.md "Streaming
# ingestion") vs through POST /v1/events, on this machine, embedded store, fsync on. Starts a
# throwaway redis-server (free loopback port, temporary folder, no persistence) and one
# `cairn serve` on a fresh data directory whose consumer reads `bench:events`; then
# scripts/stream_bench.py posts and streams new events and prints one JSON line per figure; last,
# a kill -9 of the server during stream ingestion and a restart, counting lost and doubled events.
#
#   scripts/stream-bench.sh                     # the debug binary (cargo build -p cairn-cli)
#   PROFILE=release scripts/stream-bench.sh     # the release binary
#
# Environment (all optional): PROFILE (debug), NO_BUILD=1 (use the binary as built), EVENTS
# (20000, per batched phase), SINGLE_EVENTS (2000, one event per request), BATCH (100: events per
# request and the consumer's stream.batch), ITEMS (500), CRASH_EVENTS (20000, the kill -9 run),
# RESULTS (file the lines are appended to).
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

start_cairn() {
    CAIRN_DATA_DIR=$WORK/data CAIRN_SERVER__PORT=$HTTP_PORT CAIRN_TRAIN__INTERVAL_SECS=0 \
    CAIRN_STREAM__REDIS_URL=redis://127.0.0.1:$REDIS_PORT CAIRN_STREAM__KEY=bench:events \
    CAIRN_STREAM__BATCH=$BATCH CAIRN_STREAM__CONSUMER=bench CAIRN_LOG=warn \
        "$CAIRN" serve >>"$WORK/cairn.log" 2>&1 &
    CAIRN_PID=$!
    pids+=("$CAIRN_PID")
}
start_cairn

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
LABEL="$PROFILE build, $cpu, $(nproc) cores shared with other work, $(date -u +%Y-%m-%d), redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
export CAIRN_URL=http://127.0.0.1:$HTTP_PORT REDIS_PORT BATCH LABEL
python3 scripts/stream_bench.py | tee -a "${RESULTS:-/dev/null}"

# At least once across a crash: CRASH_EVENTS (20000) more entries, kill -9 of the server once it
# stored a quarter of them, a restart on the same data directory and consumer name, and the count
# of events stored afterwards against the count expected (none lost, none stored twice).
python3 scripts/stream_bench.py crash-start "$WORK/crash.json" "$CAIRN_PID" "${CRASH_EVENTS:-20000}"
wait "$CAIRN_PID" 2>/dev/null || true
start_cairn
python3 scripts/stream_bench.py crash-verify "$WORK/crash.json" | tee -a "${RESULTS:-/dev/null}"
