#!/usr/bin/env bash
# Cairn's HNSW (crates/cairn-ann) against hnswlib on the peer harness's synthetic ANN benchmark,
# in one run on the same data:
#   1. export the vectors, queries and exact top-10 made by speed_peers.py's own generator
#      (synth_vectors, seed 7) and brute force (faiss IndexFlatIP), as speed_peers.py does;
#   2. speed_peers.py ann --libs hnswlib (1-thread build, ef sweep, 1-thread QPS);
#   3. the ann_bench example on the exported files (1- and 2-thread build, same ef sweep);
#   4. a table of both curves and the Cairn/hnswlib QPS ratio at recall 0.95.
#
#   scripts/ann-compare.sh                    # 1M × 64, 10k queries (about 30 min on 2 cores)
#   N=100000 scripts/ann-compare.sh           # quicker check
#
# Environment: N, DIM, QUERIES, EFS, PEERS_DIR (default ../shared/peers beside the repository),
# PEERS_PY (default $HOME/.cache/peers-venv/bin/python), ANN_DATA (export folder), OUT (JSONL).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
DIM=${DIM:-64}
QUERIES=${QUERIES:-10000}
EFS=${EFS:-10,16,24,32,40,48,56,64,80,96,128}
PEERS_PY=${PEERS_PY:-$HOME/.cache/peers-venv/bin/python}
PEERS_DIR=${PEERS_DIR:-$PWD/../shared/peers}
[[ -f "$PEERS_DIR/speed_peers.py" ]] || { echo "no speed_peers.py in $PEERS_DIR (set PEERS_DIR)" >&2; exit 2; }
ANN_DATA=${ANN_DATA:-${TMPDIR:-/tmp}/cairn-ann-$N-$DIM-$QUERIES}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET/ann-compare-$N.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

echo "# $(date -u +%FT%TZ) host $(hostname) cores $(nproc) loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cargo build --release -p cairn-ann --example ann_bench

if [[ ! -f "$ANN_DATA/meta.json" ]]; then
    echo "# exporting $N x $DIM vectors, $QUERIES queries to $ANN_DATA" >&2
    "$PEERS_PY" - "$PEERS_DIR" "$N" "$DIM" "$QUERIES" "$ANN_DATA" <<'EOF'
import json, os, sys
peers, n, dim, nq, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, peers)
import faiss
from speed_peers import synth_vectors

k, seed = 10, 7  # speed_peers.py's defaults for --k and --seed
X, Q = synth_vectors(n, dim, nq, seed)
faiss.omp_set_num_threads(2)
flat = faiss.IndexFlatIP(dim)
flat.add(X)
_, gt = flat.search(Q, k)
os.makedirs(out, exist_ok=True)
X.astype("<f4").tofile(os.path.join(out, "base.f32"))
Q.astype("<f4").tofile(os.path.join(out, "query.f32"))
gt.astype("<u4").tofile(os.path.join(out, "gt.u32"))
json.dump(dict(n=n, dim=dim, queries=nq, k=k, seed=seed, metric="ip"), open(os.path.join(out, "meta.json"), "w"))
EOF
fi

echo "# hnswlib (speed_peers.py)" >&2
"$PEERS_PY" "$PEERS_DIR/speed_peers.py" ann --n "$N" --dim "$DIM" --queries "$QUERIES" --libs hnswlib \
    --full-curve --efs "$EFS" --out "$OUT"

echo "# cairn (ann_bench)" >&2
"$TARGET/release/examples/ann_bench" "$ANN_DATA" --efs "$EFS" --build-threads 1,2 | tee -a "$OUT"

"$PEERS_PY" - "$OUT" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peer = next(l for l in lines if l.get("lib") == "hnswlib")
cairn = next(l for l in lines if l.get("lib") == "cairn" and "curve" in l)
builds = {l["build_threads"]: l["build_s"] for l in lines if l.get("lib") == "cairn" and "build_s" in l}

def qps_at(curve, target=0.95):
    """QPS at recall `target`, interpolated linearly between the two sweep points around it."""
    for a, b in zip(curve, curve[1:]):
        if a["recall"] < target <= b["recall"]:
            t = (target - a["recall"]) / (b["recall"] - a["recall"])
            return a["qps"] + t * (b["qps"] - a["qps"])
    return curve[0]["qps"] if curve and curve[0]["recall"] >= target else None

print(f"\nn={peer['n']} dim={peer['dim']} queries={peer['queries']} k={peer['k']} M={peer['M']} "
      f"ef_construction={peer['ef_construction']} simd={cairn.get('simd')}")
print(f"build_s 1 thread: hnswlib {peer['build_s']:.1f}  cairn {builds.get(1, float('nan')):.1f}  "
      f"(cairn/hnswlib time {builds.get(1, float('nan')) / peer['build_s']:.2f}); cairn 2 threads {builds.get(2, float('nan')):.1f}")
print(f"\n{'ef':>5} | {'hnswlib recall':>14} {'qps':>8} | {'cairn recall':>12} {'qps':>8} | qps ratio")
pc = {p["ef"]: p for p in peer["curve"]}
for c in cairn["curve"]:
    p = pc.get(c["ef"])
    if p:
        print(f"{c['ef']:>5} | {p['recall']:>14.4f} {p['qps']:>8.0f} | {c['recall']:>12.4f} {c['qps']:>8.0f} | {c['qps'] / p['qps']:.2f}")
hq, cq = qps_at(peer["curve"]), qps_at(cairn["curve"])
if hq and cq:
    print(f"\nQPS at recall 0.95 (interpolated): hnswlib {hq:.0f}  cairn {cq:.0f}  ratio {cq / hq:.2f}")
print(f"first ef reaching 0.95: hnswlib {peer['at_target']}  cairn {cairn['at_target']}")
print(f"loadavg at start/end: hnswlib {peer['loadavg_1m_start']}/{peer['loadavg_1m_end']}")
EOF
