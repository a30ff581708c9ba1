#!/usr/bin/env bash
# Schemathesis against the served OpenAPI document: starts `cairn serve --demo` on a free loopback
# port (over a fresh data directory with an admin key, which every request sends), waits until it is
# ready, and runs schemathesis on its /openapi.json, every operation but POST /v1/backup (it writes a
# folder at a path the request names: fuzzed, that could be anywhere on the machine; the Rust fuzzer
# crates/cairn-server/tests/fuzz.rs covers it, confined to a temporary folder). Checks: no server
# error, and responses that conform to the document (status codes, content types, headers, body
# schemas). Exits non-zero on any failure; 3 when schemathesis cannot be installed.
#
# Usage: scripts/schemathesis.sh [MAX_EXAMPLES]     (examples per operation, default 100)
#
# Environment (all optional):
#   CAIRN_SCHEMATHESIS_VENV  the virtual environment, created when missing
#                            (default ~/.cache/cairn-schemathesis-venv)
#   CAIRN_BIN                the cairn binary (default target/debug/cairn, built when missing)
#   SEED                     schemathesis's seed (default 1)
#   WORKERS                  concurrent schemathesis workers (default 2)
#   PHASES                   schemathesis phases (default examples,coverage,fuzzing,stateful)
#   MAX_TIME                 a time budget in seconds for the whole run (none by default)
#   REPORT_DIR               where the JUnit report goes (default target/schemathesis)
#   WAIT_READY               1 (default): wait up to 30 min for the demo's first model before the
#                            run; 0: start at once, with the training running (CI, where a debug
#                            build trains for minutes), and leave out /readyz, which answers 503
#                            until the model serves
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${1:-100}
VENV=${CAIRN_SCHEMATHESIS_VENV:-$HOME/.cache/cairn-schemathesis-venv}
SEED=${SEED:-1}
WORKERS=${WORKERS:-2}
PHASES=${PHASES:-examples,coverage,fuzzing,stateful}
REPORT_DIR=${REPORT_DIR:-$ROOT/target/schemathesis}

log() { echo "[schemathesis.sh $(date -u +%H:%M:%S)] $*" >&2; }

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    if ! { python3 -m venv "$VENV" && "$VENV/bin/python" -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION"; }; then
        log "could not install schemathesis (no network or no python3-venv?)"
        exit 3
    fi
fi

CAIRN=${CAIRN_BIN:-$ROOT/target/debug/cairn}
if [[ -z ${CAIRN_BIN:-} ]]; then
    cargo build -q --locked -p cairn-cli
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

DATA=$WORK/data
TOKEN=$(CAIRN_LOG=warn "$CAIRN" keys create --scope admin --name schemathesis --data-dir "$DATA" 2>/dev/null)

# No background retraining: a training every few seconds would only slow the run down.
CAIRN_LOG=warn CAIRN_TRAIN__INTERVAL_SECS=0 \
    "$CAIRN" serve --demo --port 0 --data-dir "$DATA" >"$WORK/stdout" 2>"$WORK/stderr" &
SERVER_PID=$!

BASE=
for _ in $(seq 1 600); do
    BASE=$(sed -n 's/^cairn listening on //p' "$WORK/stdout" | head -n 1)
    [[ -n $BASE ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "cairn serve exited:"; cat "$WORK/stderr" >&2; exit 1
    fi
    sleep 0.1
done
[[ -n $BASE ]] || { log "cairn serve did not start"; cat "$WORK/stderr" >&2; exit 1; }
EXCLUDE=(--exclude-path /v1/backup)
if [[ ${WAIT_READY:-1} == 1 ]]; then
    log "cairn serves the demo shop on $BASE; waiting for its first model"
    for _ in $(seq 1 1800); do
        if curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/readyz"; then
            break
        fi
        sleep 1
    done
    curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/readyz" \
        || { log "the server never became ready"; tail -n 20 "$WORK/stderr" >&2; exit 1; }
else
    log "cairn serves the demo shop on $BASE; not waiting for its first model"
    EXCLUDE+=(--exclude-path /readyz)
fi

ARGS=(
    run "$BASE/openapi.json"
    --url "$BASE"
    --header "Authorization: Bearer $TOKEN"
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
    "${EXCLUDE[@]}"
    --max-examples "$EXAMPLES"
    --seed "$SEED"
    --workers "$WORKERS"
    --phases "$PHASES"
    --suppress-health-check all
    --request-timeout 120
    --report junit
    --report-dir "$REPORT_DIR"
)
if [[ -n ${MAX_TIME:-} ]]; then
    ARGS+=(--max-time "$MAX_TIME")
fi
log "schemathesis ${ARGS[*]}"
status=0
# From the scratch folder, where schemathesis leaves its own state.
(cd "$WORK" && "$VENV/bin/schemathesis" "${ARGS[@]}") || status=$?

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "cairn serve died during the run:"; tail -n 50 "$WORK/stderr" >&2
    exit 1
fi
if grep -q "panicked" "$WORK/stderr"; then
    log "the server panicked:"; grep -A5 "panicked" "$WORK/stderr" >&2
    exit 1
fi
exit "$status"
