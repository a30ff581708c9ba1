#!/usr/bin/env bash
# Soak: the demo shop (1,000 users, 2,000 items, 50,000 events) served by `cairn serve`, driven by
# `cairn-bench soak`: first the peak of a mixed workload (recommendations, similar, popular, event
# batches), then 70% of it for $DURATION with a training forced every minute and the server's RSS
# sampled every 5 s. Writes minutes.csv (one row per minute), rss.csv and summary.json to $OUT.
# See docs/reliability/soak.md.
#
# Environment (all optional):
#   DURATION   soak length (30m)          FRACTION  share of the peak (0.7)
#   OUT        results folder (target/soak/<time>)
#   PORT       server port (18490)        PROFILE   cargo profile of the binaries: dev or release (dev)
#   NO_BUILD=1 skip cargo build           EXTRA     more arguments for cairn-bench soak
#   DATA_FROM  a data directory to copy instead of generating the demo (`cairn demo` trains once,
#              which takes minutes in a dev build)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-dev}
DIR=$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")
DURATION=${DURATION:-30m}
FRACTION=${FRACTION:-0.7}
PORT=${PORT:-18490}
OUT=${OUT:-$TARGET/soak/$(date -u +%Y%m%dT%H%M%SZ)}
DATA=$OUT/data

log() { echo "[soak $(date -u +%H:%M:%S)] $*" >&2; }

if [[ -z ${NO_BUILD:-} ]]; then
    log "building cairn and cairn-bench ($PROFILE)"
    cargo build --profile "$PROFILE" -p cairn-cli -p cairn-bench
fi
CAIRN=$TARGET/$DIR/cairn
BENCH=$TARGET/$DIR/cairn-bench
mkdir -p "$OUT"

if [[ -n ${DATA_FROM:-} ]]; then
    log "copying the data directory $DATA_FROM to $DATA"
    cp -a "$DATA_FROM" "$DATA"
else
    log "demo data into $DATA"
    "$CAIRN" --data-dir "$DATA" demo >"$OUT/demo.log" 2>&1
fi

# The bench forces the trainings; the server's own schedule is off.
log "starting cairn serve on port $PORT (log: $OUT/server.log)"
CAIRN_TRAIN__INTERVAL_SECS=0 CAIRN_LOG=${CAIRN_LOG:-info} "$CAIRN" --data-dir "$DATA" \
    serve --port "$PORT" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT
URL=http://127.0.0.1:$PORT
until curl -fsS "$URL/readyz" >/dev/null 2>&1; do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.5
done
log "ready; RSS $(grep VmRSS /proc/$SERVER_PID/status)"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu: $(lscpu | grep 'Model name' | sed 's/Model name: *//'), $(nproc) cores"
    echo "profile: $PROFILE"
    echo "git: $(git rev-parse --short HEAD)"
    echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

"$BENCH" soak --url "$URL" --server-pid "$SERVER_PID" --out "$OUT" --duration "$DURATION" \
    --fraction "$FRACTION" ${EXTRA:-}
grep -E "VmRSS|VmHWM" "/proc/$SERVER_PID/status" | tee -a "$OUT/machine.txt"
log "done; results in $OUT"
