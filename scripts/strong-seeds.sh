#!/usr/bin/env bash
# Strong generalization over several seeds of the same protocol: the peers harness and Cairn on each
# split folder in one run, then one table of means over the folders (scripts/strong_seeds.py).
#
#   scripts/strong-seeds.sh SPLIT_DIR...
#
# A split folder of ml-latest-small has only ~60 test users, so one folder decides a metric to a few
# hundredths; the seeds of `splits.py --seed` give independent draws of the same protocol.
# Per folder: run_peers.py (its default strong-gen models and quick grid), then `cairn-bench strong`
# with ALS at 64 and 128 factors, EASE, item-kNN, user-kNN, BPR and popularity (the same quick grids,
# chosen on validation NDCG@100), then a blend of the chosen ALS 64, ALS 128, EASE and user-kNN with
# weights learned on the validation users.
# Environment: PEERS_DIR (default ../shared/peers), PEERS_PYTHON (default
# ~/.cache/peers-venv/bin/python), BENCH (default target/release/cairn-bench), OUT (default
# target/strong-seeds).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
PY="${PEERS_PYTHON:-$HOME/.cache/peers-venv/bin/python}"
BENCH="${BENCH:-$ROOT/target/release/cairn-bench}"
OUT="${OUT:-$ROOT/target/strong-seeds}"
[[ $# -gt 0 ]] || { echo "usage: $0 SPLIT_DIR..." >&2; exit 2; }
[[ -x "$BENCH" ]] || { echo "no $BENCH: cargo build --release -p cairn-bench" >&2; exit 2; }
[[ -x "$PY" ]] || { echo "no peers python at $PY (run the peers' setup.sh or set PEERS_PYTHON)" >&2; exit 2; }
mkdir -p "$OUT"
for split in "$@"; do
  name="$(basename "$split")"
  echo "# $name: peers" >&2
  "$PY" "$PEERS_DIR/run_peers.py" "$split" --threads 2 --no-auc --out "$OUT/peers.jsonl" \
    > /dev/null 2>> "$OUT/peers.log"
  echo "# $name: cairn" >&2
  cairn="$OUT/cairn-$name.jsonl"
  : > "$cairn"
  for f in 64 128; do
    "$BENCH" strong "$split" --models als --factors "$f" \
      | "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read()); d["model"]="als-f"+sys.argv[1]; print(json.dumps(d))' "$f" \
      >> "$cairn"
  done
  "$BENCH" strong "$split" --models pop,ease,knn-cosine,user-knn,bpr --factors 64 >> "$cairn"
  members="$("$PY" - "$cairn" <<'PYEOF'
import json, sys
chosen = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    chosen[d["model"]] = d["chosen"]
print(json.dumps([chosen[m] for m in ["ease", "als-f128", "als-f64", "user-knn"]]))
PYEOF
)"
  "$BENCH" strong "$split" --blend --spec "$members" \
    | "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read()); d["split"]=sys.argv[1]; print(json.dumps(d))' "$split" >> "$cairn"
done
"$PY" "$ROOT/scripts/strong_seeds.py" "$OUT" | tee "$OUT/summary.md"
