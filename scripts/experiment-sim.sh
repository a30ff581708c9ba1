#!/usr/bin/env bash
# Online experiments end to end over HTTP: builds release `cairn` and `cairn-bench` once, starts
# `cairn serve` on a temporary data directory (no periodic training; a `popular` placement beside
# `home` for the ranker case), and runs `cairn-bench experiment-sim` against it: a seeded shop with
# planted user tastes, a trained champion, then the cases (A/A looked at daily, a 2% logging loss
# for SRM, a planted +5% CTR lift at the A/A pilot's sample size, and two rankers as A/B and as
# team-draft interleaving). One JSON line per experiment and per case's summary goes to $JSONL.
# See docs/BENCHMARKS.md, "Experiments simulated over HTTP".
#
# Environment (all optional):
#   JSONL  output (docs/bench/experiment-sim.jsonl)   PORT (18520)   SEED (42)
#   DATA_ROOT  where the temporary data directory goes (/dev/shm when it exists, else /tmp)
#   CASES  the cases of the first run (aa,skew,lift)   RANKERS  controls of the ranker case, each
#   against `home` (popular home-3)   NO_BUILD=1  skip the build
#   Extra arguments go to every `cairn-bench experiment-sim` run.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
JSONL=${JSONL:-$ROOT/docs/bench/experiment-sim.jsonl}
PORT=${PORT:-18520}
SEED=${SEED:-42}
if [[ -z ${DATA_ROOT:-} ]]; then
    if [[ -d /dev/shm && -w /dev/shm ]]; then DATA_ROOT=/dev/shm; else DATA_ROOT=${TMPDIR:-/tmp}; fi
fi

log() { echo "[experiment-sim $(date -u +%H:%M:%S)] $*" >&2; }

if [[ -z ${NO_BUILD:-} ]]; then
    log "building cairn and cairn-bench (release)"
    nice -n 10 cargo build --release -p cairn-cli -p cairn-bench
fi
# BIN_DIR: where the binaries are (a dev build: BIN_DIR=target/debug NO_BUILD=1).
BIN_DIR=${BIN_DIR:-$TARGET/release}
CAIRN=$BIN_DIR/cairn
BENCH=$BIN_DIR/cairn-bench

WORK=$(mktemp -d "$DATA_ROOT/cairn-experiment-sim.XXXXXX")
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The served placements: `home` as by default; the ranker case's controls: `popular` (the
# popularity list alone, not personal) and `home-3` (home with at most 3 items of a category
# instead of 4: a smaller difference).
cat >"$WORK/cairn.toml" <<'EOF'
[serve.placements.home]
exploration = 0.05
max_per_category = 4

[serve.placements.home-3]
exploration = 0.05
max_per_category = 3

[serve.placements.popular]
retrievers = [{ source = "popular", quota = 200 }]
EOF

simd=$(grep -o -w 'avx512f\|avx2\|neon' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' ' | sed 's/ $//')
mkdir -p "$(dirname "$JSONL")"
printf '{"row":"machine","date":"%s","cpu":"%s","cores":%s,"simd":"%s","git":"%s","binaries":"%s","data_root":"%s"}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(lscpu | grep 'Model name' | sed 's/Model name: *//')" "$(nproc)" "$simd" \
    "$(git rev-parse --short HEAD)" "${BIN_DIR#"$ROOT"/}" "$DATA_ROOT" >"$JSONL"

log "cairn serve on port $PORT (data: $WORK/data, log: $WORK/server.log)"
CAIRN_TRAIN__INTERVAL_SECS=0 CAIRN_TRAIN__RANKER__ENABLED=false CAIRN_LOG=${CAIRN_LOG:-warn} \
    nice -n 10 "$CAIRN" --config "$WORK/cairn.toml" --data-dir "$WORK/data" serve --port "$PORT" \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
URL=http://127.0.0.1:$PORT
until curl -fsS "$URL/healthz" >/dev/null 2>&1; do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.2
done

start=$(date +%s)
nice -n 10 "$BENCH" experiment-sim --url "$URL" --seed "$SEED" --out "$JSONL" \
    --cases "${CASES:-aa,skew,lift}" "$@"
for control in ${RANKERS-popular home-3}; do
    nice -n 10 "$BENCH" experiment-sim --url "$URL" --seed "$SEED" --out "$JSONL" --no-setup \
        --cases ranker --ranker-control "$control" --ranker-treatment home "$@"
done
log "done in $(($(date +%s) - start)) s; lines in $JSONL"
