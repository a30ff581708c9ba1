#!/usr/bin/env bash
# 1,000 idle TCP connections and 50 slow-header clients against `cairn serve --demo`, while real
# clients measure latency and errors (scripts/idle_connections.py): first without the idle
# connections, then with them. Prints one JSON object; see docs/reliability/connections.md.
#
# Environment (all optional):
#   CAIRN_BIN   the binary (default: target/debug/cairn, built with `cargo build -p cairn-cli`
#               unless NO_BUILD=1)
#   PORT        server port (default 0: a free one, read from the server's banner)
#   IDLE SLOW   idle and slow-header connections held (1000 50)
#   THREADS     real clients, closed loop (4)
#   PHASE_SECS  measured time of each phase (30)
#   Any CAIRN_SERVER__* variable is passed to the server (e.g. CAIRN_SERVER__MAX_CONNECTIONS=0).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${PORT:-0}
IDLE=${IDLE:-1000}
SLOW=${SLOW:-50}
THREADS=${THREADS:-4}
SECONDS_PER_PHASE=${PHASE_SECS:-30}

log() { echo "[idle-connections $(date -u +%H:%M:%S)] $*" >&2; }

if [[ -z ${NO_BUILD:-} && -z ${CAIRN_BIN:-} ]]; then
    cargo build -q -p cairn-cli
fi
CAIRN=${CAIRN_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/cairn}

# Room for the held connections in both processes.
ulimit -n "$(ulimit -Hn)"

DATA=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA" "$DATA.out" "$DATA.err"
}
trap cleanup EXIT

log "starting cairn serve --demo"
CAIRN_LOG=${CAIRN_LOG:-warn} CAIRN_TRAIN__INTERVAL_SECS=0 \
    "$CAIRN" serve --demo --port "$PORT" --data-dir "$DATA" >"$DATA.out" 2>"$DATA.err" &
SERVER_PID=$!

# The port it bound, from its one stdout line (`cairn listening on http://127.0.0.1:PORT`): never
# another process's server on a busy port.
for _ in $(seq 1 600); do
    if grep -q "listening on" "$DATA.out" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "$DATA.err" >&2
        exit 1
    fi
    sleep 1
done
PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$DATA.out")
[[ -n $PORT ]] || { log "no banner"; cat "$DATA.err" >&2; exit 1; }
log "serving on 127.0.0.1:$PORT (pid $SERVER_PID); waiting for the first model"

# Ready once the first model is trained (the demo's first training runs in the background).
for _ in $(seq 1 600); do
    if python3 -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=2).status == 200 else 1)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "$DATA.err" >&2
        exit 1
    fi
    sleep 1
done
python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=5)" ||
    { log "the first model did not train in 600 s"; exit 1; }
log "ready; measuring ${SECONDS_PER_PHASE}s alone, then ${SECONDS_PER_PHASE}s with $IDLE idle and $SLOW slow-header connections"
python3 scripts/idle_connections.py --port "$PORT" --idle "$IDLE" --slow "$SLOW" \
    --threads "$THREADS" --seconds "$SECONDS_PER_PHASE"
log "server errors logged: $(grep -c ERROR "$DATA.err" || true); the kinds:"
grep ERROR "$DATA.err" | sed 's/^.*ERROR //' | cut -c1-160 | sort | uniq -c | sort -rn | head -5 >&2 || true
