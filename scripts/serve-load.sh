#!/usr/bin/env bash
# Serving latency over loopback: builds release binaries, creates (or reuses) a data directory with a
# synthetic shop of 100k items and 1M users and a trained ALS model set, starts `cairn serve` on it,
# drives it with `cairn-bench load` at 1, 8 and 64 closed-loop clients, and writes one JSON line per
# run to $RESULTS (default target/serve-load/results-<time>.jsonl). See docs/bench/serving.md.
#
# Environment (all optional):
#   CAIRN_LOAD_DIR   data directory to reuse; created by serve-setup when it holds no model yet
#                    (default: target/serve-load/data, kept between runs: setup takes the longest)
#   ITEMS USERS EVENTS_PER_USER SEED MODEL   serve-setup's shop and model (100000 1000000 8 42 als)
#   ITERATIONS       training iterations of the model (its default when unset; serving cost does not
#                    depend on it, training time does)
#   PROFILE_REQUESTS in-process engine calls per stage before the server starts (2000; 0 skips)
#   DURATION WARMUP  measured and warm-up time per recommendations run (20s 5s)
#   SHORT_DURATION   measured time per similar-items and popular run (10s)
#   CONCURRENCY      closed-loop client counts (1,8,64)
#   RATES            optional open-loop total rates for recommendations, e.g. "50,100,200"
#   RATE_CONCURRENCY connections for the open-loop runs (64)
#   PORT             server port (18480)
#   NO_BUILD=1       skip cargo build
#   CAIRN_BIN BENCH_BIN  binaries to use instead of the built ones (e.g. a copy of an older build,
#                    to compare two versions of the server on the same data in one session)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT_DIR=$TARGET/serve-load
mkdir -p "$OUT_DIR"

ITEMS=${ITEMS:-100000}
USERS=${USERS:-1000000}
EVENTS_PER_USER=${EVENTS_PER_USER:-8}
SEED=${SEED:-42}
MODEL=${MODEL:-als}
ITERATIONS=${ITERATIONS:-}
PROFILE_REQUESTS=${PROFILE_REQUESTS:-2000}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
SHORT_DURATION=${SHORT_DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-1,8,64}
RATES=${RATES:-}
RATE_CONCURRENCY=${RATE_CONCURRENCY:-64}
PORT=${PORT:-18480}
DATA=${CAIRN_LOAD_DIR:-$OUT_DIR/data}
RESULTS=${RESULTS:-$OUT_DIR/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl}

log() { echo "[serve-load $(date -u +%H:%M:%S)] $*" >&2; }

if [[ -z ${NO_BUILD:-} ]]; then
    log "building release binaries (cairn, cairn-bench)"
    cargo build --release -p cairn-cli -p cairn-bench
fi
CAIRN=${CAIRN_BIN:-$TARGET/release/cairn}
BENCH=${BENCH_BIN:-$TARGET/release/cairn-bench}

: >"$RESULTS"
log "results go to $RESULTS"

if [[ ! -s $DATA/models/LATEST ]]; then
    if [[ -e $DATA/cairn.redb ]]; then
        log "$DATA has a store but no model; remove it or point CAIRN_LOAD_DIR elsewhere"
        exit 1
    fi
    log "serve-setup into $DATA: $ITEMS items, $USERS users, ~$EVENTS_PER_USER events each, $MODEL"
    "$BENCH" serve-setup --data-dir "$DATA" --items "$ITEMS" --users "$USERS" \
        --events-per-user "$EVENTS_PER_USER" --seed "$SEED" --model "$MODEL" \
        ${ITERATIONS:+--iterations "$ITERATIONS"} |
        sed 's/^{/{"kind":"setup",/' | tee -a "$RESULTS"
else
    log "reusing the data directory $DATA (model $(cat "$DATA/models/LATEST"))"
fi
echo "{\"kind\":\"sizes\",\"store_bytes\":$(stat -c %s "$DATA/cairn.redb"),\"model_bytes\":$(stat -c %s "$DATA/models/$(cat "$DATA/models/LATEST")")}" |
    tee -a "$RESULTS"

if ((PROFILE_REQUESTS > 0)); then
    log "in-process engine timings, $PROFILE_REQUESTS calls per stage"
    "$BENCH" serve-profile --data-dir "$DATA" --requests "$PROFILE_REQUESTS" --users "$USERS" \
        --items "$ITEMS" --seed "$SEED" | tee -a "$RESULTS"
fi

SERVER_LOG=$OUT_DIR/server.log
log "starting cairn serve on port $PORT (log: $SERVER_LOG)"
CAIRN_LOG=${CAIRN_LOG:-info} "$CAIRN" --config "$DATA/cairn.toml" --data-dir "$DATA" \
    serve --port "$PORT" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT

URL=http://127.0.0.1:$PORT
started=$(date +%s)
until curl -fsS "$URL/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "the server exited; its log:"
        cat "$SERVER_LOG" >&2
        exit 1
    fi
    if (($(date +%s) - started > 600)); then
        log "the server was not ready after 600s"
        exit 1
    fi
    sleep 0.5
done
log "ready after $(($(date +%s) - started))s; server RSS $(ps -o rss= -p "$SERVER_PID") KiB"
echo "{\"kind\":\"server\",\"ready_seconds\":$(($(date +%s) - started)),\"rss_kib\":$(ps -o rss= -p "$SERVER_PID" | tr -d ' '),\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"nproc\":$(nproc)}" |
    tee -a "$RESULTS"

load() {
    "$BENCH" load --url "$URL" --server-pid "$SERVER_PID" --seed "$SEED" "$@" |
        sed 's/^{/{"kind":"load",/' | tee -a "$RESULTS"
}

log "recommendations, closed loop at $CONCURRENCY clients, $WARMUP + $DURATION each"
load --label recommendations --path '/v1/users/user-{}/recommendations?k=10' --users "$USERS" \
    --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP"
log "similar items, closed loop, $SHORT_DURATION each"
load --label similar --path '/v1/items/item-{}/similar?k=10' --users "$ITEMS" \
    --concurrency "$CONCURRENCY" --duration "$SHORT_DURATION" --warmup 2s
log "popular, closed loop, $SHORT_DURATION each"
load --label popular --path '/v1/popular?k=10' \
    --concurrency "$CONCURRENCY" --duration "$SHORT_DURATION" --warmup 2s
if [[ -n $RATES ]]; then
    log "recommendations, open loop at $RATES requests/s over $RATE_CONCURRENCY connections"
    load --label recommendations-open --path '/v1/users/user-{}/recommendations?k=10' \
        --users "$USERS" --concurrency "$RATE_CONCURRENCY" --rate "$RATES" \
        --duration "$DURATION" --warmup "$WARMUP"
fi
log "done; results in $RESULTS"
