#!/usr/bin/env bash
# Drift alarms end to end: starts `cairn serve` on an empty data directory with short drift windows,
# and runs `cairn-bench drift-sim` against it once per planted shift (popularity, event mix, and a
# partial popularity shift). Each run: a seeded shop, a trained champion, a long stable run of
# windows, then the shift; prints windows until the alarm and false alarms over the stable windows.
# Results (one JSON per run) go to $OUT. See docs/BENCHMARKS.md, "Drift alarms".
#
# Environment (all optional):
#   WINDOW_SECS  drift.window_secs (3)         STABLE  stable windows (40)   SHIFTED  windows after (3)
#   EVENTS       events per window (600)       SEED    (42)
#   PORT         first server port (18495)     PROFILE cargo profile: dev or release (dev)
#   OUT          results folder (target/drift-sim/<time>)   NO_BUILD=1 skip cargo build
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-dev}
DIR=$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")
WINDOW_SECS=${WINDOW_SECS:-3}
STABLE=${STABLE:-40}
SHIFTED=${SHIFTED:-3}
EVENTS=${EVENTS:-600}
SEED=${SEED:-42}
PORT=${PORT:-18495}
OUT=${OUT:-$TARGET/drift-sim/$(date -u +%Y%m%dT%H%M%SZ)}

log() { echo "[drift-sim $(date -u +%H:%M:%S)] $*" >&2; }

if [[ -z ${NO_BUILD:-} ]]; then
    log "building cairn and cairn-bench ($PROFILE)"
    cargo build --profile "$PROFILE" -p cairn-cli -p cairn-bench
fi
CAIRN=$TARGET/$DIR/cairn
BENCH=$TARGET/$DIR/cairn-bench
mkdir -p "$OUT"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu: $(lscpu | grep 'Model name' | sed 's/Model name: *//'), $(nproc) cores"
    echo "profile: $PROFILE"
    echo "git: $(git rev-parse --short HEAD)"
} | tee "$OUT/machine.txt"

run() {
    local name=$1 port=$2
    shift 2
    local data=$OUT/$name-data
    log "$name: cairn serve on port $port (log: $OUT/$name-server.log)"
    # No periodic training and no ranker (the champion is trained once, by the bench); windows of
    # WINDOW_SECS seconds, and enough of them kept for the whole run.
    CAIRN_TRAIN__INTERVAL_SECS=0 CAIRN_TRAIN__RANKER__ENABLED=false \
        CAIRN_DRIFT__WINDOW_SECS=$WINDOW_SECS CAIRN_DRIFT__HISTORY_WINDOWS=200 \
        CAIRN_LOG=${CAIRN_LOG:-info} "$CAIRN" --data-dir "$data" serve --port "$port" \
        >"$OUT/$name-server.log" 2>&1 &
    local pid=$!
    local url=http://127.0.0.1:$port
    until curl -fsS "$url/healthz" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { cat "$OUT/$name-server.log" >&2; exit 1; }
        sleep 0.2
    done
    "$BENCH" drift-sim --url "$url" --stable-windows "$STABLE" --shift-windows "$SHIFTED" \
        --events-per-window "$EVENTS" --seed "$SEED" --out "$OUT/$name.json" "$@" \
        | tee "$OUT/$name-summary.json"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

run popularity "$PORT" --shift popularity
run mix $((PORT + 1)) --shift mix
run popularity-30pct $((PORT + 2)) --shift popularity --shift-fraction 0.3
log "done; results in $OUT"
