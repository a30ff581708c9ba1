#!/usr/bin/env bash
# Replicas over one PostgreSQL store (docs/POSTGRES.md, "Replicas"): ingestion (events/s) and
# recommendations (req/s) with 1 and 2 `cairn serve` replicas, then a failover run: sustained
# writes to both replicas and reads on one, `kill -9` of the other (the trainer), and the count of
# acknowledged events missing from the database afterwards, the failed reads on the survivor, and
# whether the survivor took the trainer lease and trained. Needs a PostgreSQL:
#
#   scripts/with-postgres.sh scripts/replicas.sh
#
# Load comes from the existing tools: `cairn-bench load` (recommendations, closed loop) and
# `cairn-bench soak`'s peak finder with an events-only mix (ingestion); the failover's writer is a
# small Python loop that records which batches were acknowledged. One JSON line per figure goes
# to $RESULTS (default target/replicas/results-<time>.jsonl).
#
# Environment (all optional):
#   NO_BUILD=1            use the binaries already built
#   PROFILE               target profile folder of the binaries (release)
#   USERS ITEMS EVENTS    the demo shop loaded first (1000 2000 50000)
#   DURATION              measured time per throughput run (20s)
#   CONCURRENCY           closed-loop connections per replica (8)
#   BATCH                 events per ingestion request (10)
#   FAILOVER_SECS         length of the failover run (60); the trainer is killed after a third
#   TRAIN_SECS            train.interval_secs of the replicas in the failover run (10)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
URL=${CAIRN_TEST_POSTGRES_URL:-}
if [[ -z $URL ]]; then
    echo "replicas.sh: no PostgreSQL (CAIRN_TEST_POSTGRES_URL); run it as scripts/with-postgres.sh scripts/replicas.sh" >&2
    exit 2
fi
PROFILE=${PROFILE:-release}
USERS=${USERS:-1000}
ITEMS=${ITEMS:-2000}
EVENTS=${EVENTS:-50000}
DURATION=${DURATION:-20s}
CONCURRENCY=${CONCURRENCY:-8}
BATCH=${BATCH:-10}
FAILOVER_SECS=${FAILOVER_SECS:-60}
TRAIN_SECS=${TRAIN_SECS:-10}
OUT_DIR=$ROOT/target/replicas
mkdir -p "$OUT_DIR"
RESULTS=${RESULTS:-$OUT_DIR/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
WORK=$(mktemp -d "$OUT_DIR/run.XXXXXX")
MODELS=$WORK/models

log() { echo "[replicas $(date -u +%H:%M:%S)] $*" >&2; }

if [[ -z ${NO_BUILD:-} ]]; then
    log "building release binaries (cairn, cairn-bench)"
    nice -n 10 cargo build --release -p cairn-cli -p cairn-bench
fi
CAIRN=$ROOT/target/$PROFILE/cairn
BENCH=$ROOT/target/$PROFILE/cairn-bench

declare -A PID PORT
cleanup() {
    for name in "${!PID[@]}"; do
        kill "${PID[$name]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME TRAIN_INTERVAL: a replica with its own data_dir, the shared store and models folder.
start() {
    local name=$1 interval=$2
    PORT[$name]=$(free_port)
    mkdir -p "$WORK/$name"
    CAIRN_STORE__URL=$URL CAIRN_MODELS__DIR=$MODELS CAIRN_TRAIN__INTERVAL_SECS=$interval \
        CAIRN_MODELS__WATCH_INTERVAL_MS=1000 CAIRN_LOG=${CAIRN_LOG:-info} \
        "$CAIRN" serve --port "${PORT[$name]}" --data-dir "$WORK/$name" \
        >"$WORK/$name.out" 2>>"$WORK/$name.log" &
    PID[$name]=$!
    for _ in $(seq 1 600); do
        if curl -fs "http://127.0.0.1:${PORT[$name]}/readyz" >/dev/null 2>&1; then
            log "replica $name up on port ${PORT[$name]} (pid ${PID[$name]})"
            return 0
        fi
        sleep 0.2
    done
    log "replica $name did not become ready; see $WORK/$name.log"
    exit 1
}

stop() {
    kill "${PID[$1]}" 2>/dev/null || true
    wait "${PID[$1]}" 2>/dev/null || true
    unset "PID[$1]"
}

url_of() { echo "http://127.0.0.1:${PORT[$1]}"; }

models_field() { curl -fs "$(url_of "$1")/v1/models" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"$2\"])"; }

events_in_db() { psql "$URL" -Atc "SELECT count(*) FROM events"; }

CPU=$(lscpu | grep 'Model name' | sed 's/.*: *//')
echo "{\"kind\":\"machine\",\"cpu\":\"$CPU\",\"cores\":$(nproc),\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"date\":\"$(date -u +%FT%TZ)\",\"postgres\":\"$(psql "$URL" -Atc 'SHOW server_version')\"}" | tee -a "$RESULTS"

log "loading the demo shop ($USERS users, $ITEMS items, $EVENTS events) into PostgreSQL and training"
CAIRN_STORE__URL=$URL CAIRN_MODELS__DIR=$MODELS CAIRN_LOG=warn \
    "$CAIRN" demo --data-dir "$WORK/setup" --users "$USERS" --items "$ITEMS" --events "$EVENTS" >&2

# reads N_REPLICAS NAMES...: recommendations on every named replica at once, summed.
reads() {
    local n=$1
    shift
    local i=0 files=()
    for name in "$@"; do
        i=$((i + 1))
        "$BENCH" load --url "$(url_of "$name")" --path '/v1/users/user-0{}/recommendations?k=10' \
            --users "$USERS" --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup 5s \
            --seed "$i" --server-pid "${PID[$name]}" --label "replicas-$n-reads-$name" \
            >"$WORK/reads-$n-$name.jsonl" &
        files+=("$WORK/reads-$n-$name.jsonl")
    done
    wait_bench
    cat "${files[@]}" >>"$RESULTS"
    python3 - "$n" "${files[@]}" <<'EOF' | tee -a "$RESULTS"
import json, sys
n, files = sys.argv[1], sys.argv[2:]
runs = [json.loads(l) for f in files for l in open(f) if l.strip()]
print(json.dumps({"kind": "reads", "replicas": int(n), "rps": round(sum(r["rps"] for r in runs), 1),
                  "errors": sum(r["errors"] for r in runs),
                  "p99_ms": [r["p99_ms"] for r in runs],
                  "server_cpu_cores": [r.get("server_cpu_cores") for r in runs]}))
EOF
}

# ingestion N_REPLICAS NAMES...: event batches (soak's peak finder, events only) on every named
# replica at once, summed.
ingestion() {
    local n=$1
    shift
    local i=0 logs=() pids=()
    for name in "$@"; do
        i=$((i + 1))
        "$BENCH" soak --url "$(url_of "$name")" --server-pid "${PID[$name]}" \
            --out "$WORK/soak-$n-$name" --mix events=1 --batch "$BATCH" \
            --peak-concurrency "$CONCURRENCY" --peak-duration "$DURATION" --duration 1m \
            --warmup-minutes 0 --train-every 0s --users "$USERS" --items "$ITEMS" \
            --seed "$((100 * n + i))" >/dev/null 2>"$WORK/soak-$n-$name.log" &
        pids+=($!)
        logs+=("$WORK/soak-$n-$name.log")
    done
    # Only the peak finder's figure is wanted: stop each client once it printed it (the soak
    # proper would run for at least a minute).
    for log_file in "${logs[@]}"; do
        until grep -q "peak run:" "$log_file" 2>/dev/null; do sleep 0.5; done
    done
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    python3 - "$n" "$BATCH" "${logs[@]}" <<'EOF' | tee -a "$RESULTS"
import json, re, sys
n, batch, logs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
rates, errors = [], 0
for f in logs:
    m = re.search(r"peak run: \d+ connections, ([0-9.]+) ok req/s, (\d+) errors", open(f).read())
    rates.append(float(m.group(1)))
    errors += int(m.group(2))
print(json.dumps({"kind": "ingestion", "replicas": n, "batch": batch,
                  "events_per_s": round(sum(rates) * batch, 1),
                  "requests_per_s": [round(r, 1) for r in rates], "errors": errors}))
EOF
}

wait_bench() {
    # Waits for the load clients started since the last call (not for the replicas).
    local p
    for p in $(jobs -p); do
        if [[ " ${PID[*]} " != *" $p "* ]]; then
            wait "$p"
        fi
    done
}

log "one replica"
start a 0
reads 1 a
ingestion 1 a
log "two replicas"
start b 0
reads 2 a b
ingestion 2 a b
stop a
stop b

log "failover: both replicas train every ${TRAIN_SECS}s; writes to both, reads on one, kill -9 of the trainer"
start a "$TRAIN_SECS"
start b "$TRAIN_SECS"
if [[ $(models_field a trainer) == True ]]; then trainer=a survivor=b; else trainer=b survivor=a; fi
log "trainer: $trainer, survivor: $survivor"
before_versions=$(curl -fs "$(url_of "$survivor")/v1/models" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["versions"]))')
kill_at=$((FAILOVER_SECS / 3))

# Writers: one per replica, each batch with ids fo-<replica>-<n>-<k>; the acknowledged batch
# numbers go to acked-<replica>.txt.
for name in a b; do
    python3 - "$(url_of "$name")" "$name" "$FAILOVER_SECS" "$BATCH" "$USERS" "$ITEMS" \
        >"$WORK/acked-$name.txt" 2>"$WORK/writer-$name.log" <<'EOF' &
import json, sys, time, urllib.request, random
url, name, secs, batch, users, items = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
rng = random.Random(name)
end, n, failed = time.time() + secs, 0, 0
while time.time() < end:
    n += 1
    events = [{"event_id": f"fo-{name}-{n}-{k}", "user_id": f"user-{rng.randint(1, users):04}",
               "item_id": f"sku-{rng.randint(1, items):05}", "type": "view"} for k in range(batch)]
    req = urllib.request.Request(url + "/v1/events", json.dumps({"events": events}).encode(),
                                 {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status == 200:
                print(n, flush=True)
                continue
    except Exception as e:
        failed += 1
        time.sleep(0.05)
print(f"batches sent {n}, failed {failed}", file=sys.stderr)
EOF
done
"$BENCH" load --url "$(url_of "$survivor")" --path '/v1/users/user-0{}/recommendations?k=10' \
    --users "$USERS" --concurrency 4 --duration "$((FAILOVER_SECS - 2))s" --warmup 1s \
    --label failover-reads-survivor >"$WORK/failover-reads.jsonl" &
sleep "$kill_at"
log "kill -9 of the trainer ($trainer, pid ${PID[$trainer]})"
killed_at_seq=$(psql "$URL" -Atc "SELECT value FROM meta WHERE key = 'last_seq'")
kill -9 "${PID[$trainer]}"
wait "${PID[$trainer]}" 2>/dev/null || true
unset "PID[$trainer]"
lease_taken=""
for _ in $(seq 1 100); do
    if [[ $(models_field "$survivor" trainer) == True ]]; then
        lease_taken=$(date +%s.%N)
        break
    fi
    sleep 0.1
done
wait_bench
# The survivor's trainings after the kill: versions trained on log positions past the kill
# (waited for up to SETTLE_SECS after the load ends; a debug build trains slowly under load).
trained_after=0
for _ in $(seq 1 "${SETTLE_SECS:-180}"); do
    trained_after=$(curl -fs "$(url_of "$survivor")/v1/models" | python3 -c "
import json, sys
vs = json.load(sys.stdin)['versions']
print(sum(1 for v in vs if (v['metadata'].get('data') or {}).get('last_seq', 0) > $killed_at_seq))")
    [[ $trained_after -gt 0 ]] && break
    sleep 1
done
cat "$WORK"/acked-a.txt "$WORK"/acked-b.txt | wc -l >"$WORK/acked-batches"
{
    for name in a b; do
        while read -r n; do
            for k in $(seq 0 $((BATCH - 1))); do echo "fo-$name-$n-$k"; done
        done <"$WORK/acked-$name.txt"
    done
} >"$WORK/acked-ids.txt"
psql "$URL" -q -c "CREATE TEMP TABLE acked (id text)" -c "\\copy acked FROM '$WORK/acked-ids.txt'" \
    -Atc "SELECT count(*) FILTER (WHERE e.event_id IS NULL), count(*) FROM acked a LEFT JOIN events e ON e.event_id = a.id" \
    >"$WORK/lost.txt"
IFS='|' read -r lost acked_events <"$WORK/lost.txt"
python3 - "$WORK/failover-reads.jsonl" "$lost" "$acked_events" "$trained_after" "${lease_taken:+yes}" "$FAILOVER_SECS" "$kill_at" "$TRAIN_SECS" "$WORK/writer-a.log" "$WORK/writer-b.log" <<'EOF' | tee -a "$RESULTS"
import json, sys
reads = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][0]
writers = [open(f).read().strip() for f in sys.argv[9:11]]
print(json.dumps({"kind": "failover", "seconds": int(sys.argv[6]), "killed_after_s": int(sys.argv[7]),
                  "train_interval_s": int(sys.argv[8]),
                  "acknowledged_events": int(sys.argv[3]), "acknowledged_events_lost": int(sys.argv[2]),
                  "survivor_reads": reads["requests"], "survivor_read_errors": reads["errors"],
                  "survivor_read_p99_ms": reads["p99_ms"],
                  "survivor_took_lease": sys.argv[5] == "yes",
                  "versions_trained_after_kill": int(sys.argv[4]), "writers": writers}))
EOF
log "results in $RESULTS (work folder $WORK)"
