#!/usr/bin/env bash
# What shadow tests cost the served requests: the same data directory served alternately without
# shadow tests and with them at 100% sampling (the champion scoring again as its own challenger, so
# every request costs a second full scoring off the request path), PAIRS times, the order of each
# pair alternating (off,on then on,off ...), and one `cairn-bench load` run per server start. Writes
# one JSON line per run to $RESULTS, with the shadow report's counts after each shadowed run, and
# prints a per-run summary table. See docs/BENCHMARKS.md ("Shadow tests").
#
# Environment (all optional):
#   CAIRN_LOAD_DIR   data directory (default target/shadow-overhead/data; created by serve-setup)
#   ITEMS USERS EVENTS_PER_USER SEED MODEL   serve-setup's shop (20000 100000 8 42 als)
#   PAIRS            off/on pairs (4)
#   CONCURRENCY      closed-loop clients per run (1)
#   RATE             when set, an open-loop run at this total rate instead (requests/s)
#   DURATION WARMUP  per run (15s 3s)
#   PORT             server port (18490)
#   NO_BUILD=1       skip cargo build --release
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT_DIR=$TARGET/shadow-overhead
mkdir -p "$OUT_DIR"

ITEMS=${ITEMS:-20000}
USERS=${USERS:-100000}
EVENTS_PER_USER=${EVENTS_PER_USER:-8}
SEED=${SEED:-42}
MODEL=${MODEL:-als}
PAIRS=${PAIRS:-4}
CONCURRENCY=${CONCURRENCY:-1}
RATE=${RATE:-}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
PORT=${PORT:-18490}
DATA=${CAIRN_LOAD_DIR:-$OUT_DIR/data}
RESULTS=${RESULTS:-$OUT_DIR/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl}

log() { echo "[shadow-overhead $(date -u +%H:%M:%S)] $*" >&2; }

if [[ -z ${NO_BUILD:-} ]]; then
    log "building release binaries (cairn, cairn-bench)"
    cargo build --release -p cairn-cli -p cairn-bench
fi
CAIRN=${CAIRN_BIN:-$TARGET/release/cairn}
BENCH=${BENCH_BIN:-$TARGET/release/cairn-bench}
: >"$RESULTS"

if [[ ! -s $DATA/models/LATEST ]]; then
    log "serve-setup into $DATA: $ITEMS items, $USERS users, ~$EVENTS_PER_USER events each, $MODEL"
    "$BENCH" serve-setup --data-dir "$DATA" --items "$ITEMS" --users "$USERS" \
        --events-per-user "$EVENTS_PER_USER" --seed "$SEED" --model "$MODEL" >&2
fi
LATEST=$(cat "$DATA/models/LATEST")
VERSION=${LATEST#model-}
VERSION=${VERSION%.cairn}
log "champion $VERSION; $PAIRS pairs; results in $RESULTS"
echo "{\"kind\":\"machine\",\"cpu\":\"$(lscpu | grep 'Model name' | sed 's/.*: *//')\",\"nproc\":$(nproc),\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" |
    tee -a "$RESULTS"

URL=http://127.0.0.1:$PORT
run() { # $1 = off | on
    local mode=$1 enabled=false
    [[ $mode == on ]] && enabled=true
    CAIRN_SHADOW__ENABLED=$enabled CAIRN_SHADOW__SAMPLE_SHARE=1 \
        CAIRN_SHADOW__CHALLENGER=$VERSION CAIRN_LOG=warn \
        "$CAIRN" --config "$DATA/cairn.toml" --data-dir "$DATA" serve --port "$PORT" \
        >"$OUT_DIR/server-$mode.log" 2>&1 &
    local pid=$!
    until curl -fsS "$URL/readyz" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { cat "$OUT_DIR/server-$mode.log" >&2; exit 1; }
        sleep 0.3
    done
    local pace=(--concurrency "$CONCURRENCY")
    [[ -n $RATE ]] && pace=(--concurrency 16 --rate "$RATE")
    "$BENCH" load --url "$URL" --server-pid "$pid" --seed "$SEED" --label "shadow-$mode" \
        --path '/v1/users/user-{}/recommendations?k=10' --users "$USERS" "${pace[@]}" \
        --duration "$DURATION" --warmup "$WARMUP" | sed 's/^{/{"kind":"load",/' | tee -a "$RESULTS"
    if [[ $mode == on ]]; then
        curl -fsS "$URL/v1/shadow" | python3 -c 'import json,sys; r=json.load(sys.stdin); v=(r["versions"] or [{}])[0]; print(json.dumps({"kind":"shadow","sampled":r["sampled"],"dropped":r["dropped"],"scored":v.get("scored"),"errors":v.get("errors"),"overlap":v.get("overlap",{}).get("mean"),"latency_ms":v.get("latency_ms",{}).get("mean")}))' |
            tee -a "$RESULTS"
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

for ((p = 0; p < PAIRS; p++)); do
    if ((p % 2 == 0)); then run off; run on; else run on; run off; fi
done
log "done; results in $RESULTS"
python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| run | shadow | requests | errors | requests/s | p50 ms | p99 ms | server CPU cores | sampled | dropped | scored |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
n = 0
for i, r in enumerate(rows):
    if r.get("kind") != "load":
        continue
    n += 1
    s = rows[i + 1] if i + 1 < len(rows) and rows[i + 1].get("kind") == "shadow" else {}
    print(f"| {n} | {r['label'][7:]} | {r['requests']} | {r['errors']} | {r['rps']:.1f} | "
          f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r.get('server_cpu_cores', 0):.2f} | "
          f"{s.get('sampled', '')} | {s.get('dropped', '')} | {s.get('scored', '')} |")
EOF
