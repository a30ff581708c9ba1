#!/usr/bin/env bash
# A real full disk under `cairn serve`: the data directory lives on a small filesystem mounted for
# the run (tmpfs by default, or a loop-mounted ext4 image with FS=ext4). Writes events through the
# API until the disk is full, checks what a full disk answers (writes 507 `storage_full`, reads 200,
# /readyz 503, /healthz 200, cairn_store_writable 0), frees the space, checks that writes come back
# by themselves, then counts through the API, before and after a restart, that every acknowledged
# event is stored (by its event id) and none twice. Figures: docs/reliability/disk-full.md.
#
#   sudo scripts/disk-full.sh [CAIRN_BINARY]        # FS=tmpfs|ext4, SIZE_MB=32, PORT=18473
#
# Needs root (mount) and python3. Exits 1 when a check fails.
set -euo pipefail

bin=$(realpath "${1:-target/debug/cairn}")
fs=${FS:-tmpfs}
size_mb=${SIZE_MB:-32}
port=${PORT:-18473}
work=$(mktemp -d)
mnt="$work/mnt"
mkdir -p "$mnt"

pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    umount "$mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap 'status=$?; [ $status -ne 0 ] && tail -20 "$work/serve.log"; cleanup' EXIT

case "$fs" in
tmpfs) mount -t tmpfs -o "size=${size_mb}m" tmpfs "$mnt" ;;
ext4)
    truncate -s "${size_mb}M" "$work/disk.img"
    mkfs.ext4 -q -F "$work/disk.img"
    mount -o loop "$work/disk.img" "$mnt"
    ;;
*) echo "FS must be tmpfs or ext4" >&2; exit 2 ;;
esac
data="$mnt/data"
mkdir -p "$data"
echo "data directory on $fs, ${size_mb} MiB: $(df -h --output=size,avail "$mnt" | tail -1)"

export CAIRN_DATA_DIR="$data" CAIRN_SERVER__PORT="$port" CAIRN_TRAIN__INTERVAL_SECS=0 \
    CAIRN_LOG=warn CAIRN_SERVER__STORAGE_RETRY_SECS=2
start() {
    "$bin" serve >>"$work/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
        sleep 0.1
    done
    echo "the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=; }

start
python3 - "$port" "$mnt" "$work" <<'EOF'
import json, os, subprocess, sys, time, urllib.error, urllib.request

port, mnt, work = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
USERS, ITEMS, BATCH = 200, 500, 500

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw and raw[:1] in b"{[" else raw.decode())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode()

def batch(n):
    return {"events": [{"event_id": f"b{n}-{i}", "user_id": f"u{(n * 7 + i) % USERS}",
                        "item_id": f"i{(n * 13 + i * 7) % ITEMS}", "type": "view",
                        "context": {"pad": "x" * 200}} for i in range(BATCH)]}

def free_mib():
    st = os.statvfs(mnt)
    return st.f_bavail * st.f_frsize / 2**20

def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        sys.exit(1)

status, _ = call("POST", "/v1/items", {"items": [{"id": f"i{i}", "title": f"item {i}"} for i in range(ITEMS)]})
check(status == 200, f"catalog of {ITEMS} items stored")
acked, n = set(), 0
# Some events and a model first, so /readyz is 200 before the disk fills.
for n in range(4):
    status, body = call("POST", "/v1/events", batch(n))
    check(status == 200 and body["stored"] == BATCH, f"batch {n} stored whole")
    acked.update(f"b{n}-{i}" for i in range(BATCH))
n = 4
check(call("POST", "/v1/train")[0] == 200, "a model trained")
check(call("GET", "/readyz")[0] == 200, "/readyz 200 before the disk fills")
# Fill most of the disk with a file, then write events until the store refuses one.
filler = os.path.join(mnt, "filler")
subprocess.run(["fallocate", "-l", f"{max(int(free_mib()) - 6, 1)}M", filler], check=True)
print(f"filler written: {free_mib():.1f} MiB left")
refused = None
while refused is None and n < 2000:
    status, body = call("POST", "/v1/events", batch(n))
    if status == 200:
        check(body["stored"] == BATCH, f"batch {n} stored whole") if n % 20 == 0 else None
        acked.update(f"b{n}-{i}" for i in range(BATCH))
        n += 1
    else:
        refused = (status, body)
status, body = refused
print(f"disk full after {len(acked)} acknowledged events ({n} batches); {free_mib():.2f} MiB left")
check(status == 507 and body["error"]["code"] == "storage_full",
      f"the refused write is 507 storage_full: {body['error']['message'][:160]}...")
for _ in range(5):
    s, b = call("POST", "/v1/events", batch(n))
    check(s == 507, "a write while full is 507")
s, b = call("PUT", "/v1/items/new", {"id": "new", "title": "new"})
check(s == 507, "an item write while full is 507")
s, b = call("GET", "/readyz")
check(s == 503 and b["error"]["code"] == "storage_full", f"/readyz 503 storage_full: {b['error']['message'][:120]}...")
check(call("GET", "/healthz")[0] == 200, "/healthz 200")
s, metrics = call("GET", "/metrics")
check("cairn_store_writable 0" in metrics, "cairn_store_writable 0")
reads = [call("GET", p)[0] for p in
         ["/v1/items/i1", "/v1/users/u3/events?limit=10", "/v1/users/u3/recommendations?k=5",
          "/v1/popular?k=5", "/v1/items?limit=10"]]
check(all(r == 200 for r in reads), f"reads while full: {reads}")

os.remove(filler)
freed = time.time()
while True:
    s, ready = call("GET", "/readyz")
    if s == 200 or time.time() - freed > 60:
        break
    time.sleep(0.2)
took = time.time() - freed
check(s == 200, f"/readyz 200 again {took:.1f} s after the space was freed (probe every 2 s): {ready}")
s, metrics = call("GET", "/metrics")
check("cairn_store_writable 1" in metrics, "cairn_store_writable 1")
s, body = call("POST", "/v1/events", batch(n))
check(s == 200 and body["stored"] == BATCH and body["duplicates"] == 0,
      f"the refused batch, retried, is stored whole: {body}")
acked.update(f"b{n}-{i}" for i in range(BATCH))
for m in range(n + 1, n + 6):
    s, body = call("POST", "/v1/events", batch(m))
    check(s == 200, f"batch {m} after recovery")
    acked.update(f"b{m}-{i}" for i in range(BATCH))

def stored_ids():
    ids, count = set(), 0
    for u in range(USERS):
        cursor = ""
        while True:
            s, b = call("GET", f"/v1/users/u{u}/events?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
            assert s == 200, b
            for e in b["events"]:
                ids.add(e["event_id"]); count += 1
            cursor = b.get("next_cursor") or ""
            if not cursor:
                break
    return ids, count

ids, count = stored_ids()
print(f"acknowledged {len(acked)}; stored {count} events, {len(ids)} distinct ids")
check(acked <= ids, f"0 acknowledged events lost ({len(acked - ids)} missing)")
check(count == len(ids) == len(acked), f"0 duplicated, nothing unacknowledged ({count - len(acked)})")
json.dump(sorted(acked), open(os.path.join(work, "acked.json"), "w"))
EOF
stop
start
python3 - "$port" "$work" <<'EOF'
import json, sys, urllib.request
port, work = sys.argv[1], sys.argv[2]
acked = set(json.load(open(f"{work}/acked.json")))
ids, count = set(), 0
for u in range(200):
    cursor = ""
    while True:
        url = f"http://127.0.0.1:{port}/v1/users/u{u}/events?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        b = json.load(urllib.request.urlopen(url))
        for e in b["events"]:
            ids.add(e["event_id"]); count += 1
        cursor = b.get("next_cursor") or ""
        if not cursor:
            break
ok = ids == acked and count == len(acked)
print(("ok   " if ok else "FAIL ") + f"after a restart: {count} events stored, {len(acked)} acknowledged, "
      f"{len(acked - ids)} lost, {count - len(ids)} duplicated")
sys.exit(0 if ok else 1)
EOF
stop
echo "server log, warnings and errors by kind (count, level, first 110 characters):"
grep -E "WARN|ERROR|INFO" "$work/serve.log" | sed -E 's/^[^ ]+ +//' | cut -c1-110 | sort | uniq -c |
    sort -rn | head -8
