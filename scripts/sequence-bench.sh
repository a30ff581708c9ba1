#!/usr/bin/env bash
# The sequence-aware model (`transition`) against item-kNN on a leave-last-out protocol with
# timestamps: each user's newest event (by timestamp, ties in file order) is the test item, the
# next newest the validation item; NDCG@10 and HitRate@10 over the full catalogue (no sampled
# negatives), paired differences with 95% bootstrap intervals (docs/bench/sequence.md).
#
#   scripts/sequence-bench.sh
#
# Per dataset: both models tuned on the validation stage by `cairn tune` (the same number of
# trials, objective NDCG@10), then `cairn eval` on the test stage twice: the default settings
# (baseline: item-kNN), and the tuned settings with two ablations of the tuned transition model (order
# removed: `backward` 1; only the newest event: `last_n` 1) (baseline: the tuned item-kNN).
# Environment: DATA (default ../shared/data), CAIRN (default target/release/cairn), OUT (default
# target/sequence-bench), TRIALS (default 30), SEED (default 42).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${DATA:-$ROOT/../shared/data}"
CAIRN="${CAIRN:-$ROOT/target/release/cairn}"
OUT="${OUT:-$ROOT/target/sequence-bench}"
TRIALS="${TRIALS:-30}"
SEED="${SEED:-42}"
[[ -x "$CAIRN" ]] || { echo "no $CAIRN: cargo build --release -p cairn-cli" >&2; exit 2; }
mkdir -p "$OUT"
# ML-1M's complete rows (with timestamps) exist for users 1-2999 only; as a user,item,rating,ts CSV.
ml1m="$OUT/ml1m-users-1-2999.csv"
awk -F'::' 'BEGIN { print "user,item,rating,ts" } { print $1 "," $2 "," $3 "," $4 }' \
  "$DATA/ml-1m/ratings_users_1-2999.dat" > "$ml1m"
KNN_SPACE='neighbours=int:10:1000:log,shrinkage=float:0:200'
SEQ_SPACE='gap=int:1:8,step_decay=float:0.2:1,backward=float:0:1,shrinkage=float:0:200,alpha=float:0:1,neighbours=int:20:500:log,last_n=int:1:30,recency=float:0.3:1'
for entry in "ml-latest-small:$DATA/ml-latest-small" "ml-1m-users-1-2999:$ml1m"; do
  name="${entry%%:*}"
  data="${entry#*:}"
  common=(--data "$data" --protocol leave-last-out --seed "$SEED")
  echo "# $name: tuning item-knn and transition on validation ($TRIALS trials each)" >&2
  "$CAIRN" tune "${common[@]}" --model item-knn --metric NDCG@10 --trials "$TRIALS" \
    --space "$KNN_SPACE" --out "$OUT/$name-item-knn.json" > "$OUT/$name-tune-item-knn.txt"
  "$CAIRN" tune "${common[@]}" --model transition --metric NDCG@10 --trials "$TRIALS" \
    --space "$SEQ_SPACE" --out "$OUT/$name-transition.json" > "$OUT/$name-tune-transition.txt"
  # Ablations of the tuned transition model.
  python3 - "$OUT/$name-transition.json" "$OUT/$name" <<'PYEOF'
import json, sys
spec = json.load(open(sys.argv[1]))["train"]["model"]
for suffix, change in [("unordered", {"backward": 1.0}), ("newest-only", {"last_n": 1})]:
    json.dump({"model": {**spec, **change}}, open(f"{sys.argv[2]}-transition-{suffix}.json", "w"))
PYEOF
  echo "# $name: test stage, defaults" >&2
  cols=(--k 10 --no-auc --columns NDCG@10,HitRate@10,MRR@10,Coverage@10)
  "$CAIRN" eval "${common[@]}" --models item-knn,transition,popularity "${cols[@]}" \
    --out "$OUT/$name-eval-defaults" | tee "$OUT/$name-eval-defaults.txt"
  echo "# $name: test stage, tuned (the baseline: tuned item-knn)" >&2
  "$CAIRN" eval "${common[@]}" --models '' --model-file "$OUT/$name-item-knn.json" \
    --model-file "$OUT/$name-transition.json" \
    --model-file "$OUT/$name-transition-unordered.json" \
    --model-file "$OUT/$name-transition-newest-only.json" "${cols[@]}" \
    --out "$OUT/$name-eval-tuned" | tee "$OUT/$name-eval-tuned.txt"
done
# One table: NDCG@10, HitRate@10, paired difference against the run's baseline [95% interval], fit s.
python3 - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
for ds in ["ml-latest-small", "ml-1m-users-1-2999"]:
    for kind in ["defaults", "tuned"]:
        s = json.load(open(f"{out}/{ds}-eval-{kind}/report.json"))["stages"][0]
        print(f"\n{ds}, {kind}: {s['n_eval_users']} users, {s['n_catalog']} items ranked")
        comp = {(c["model"], c["metric"]): c for c in s["comparisons"]}
        for m in s["models"]:
            row = [m["model"]] + ["%.4f" % m["metrics"][k]["mean"] for k in ("NDCG@10", "HitRate@10")]
            for metric in ("NDCG@10", "HitRate@10"):
                c = comp.get((m["model"], metric))
                row.append("%+.4f [%+.4f, %+.4f]" % (c["mean_diff"], c["ci_low"], c["ci_high"]) if c else "baseline")
            row.append("%.2f" % m["fit_s"])
            print("| " + " | ".join(row) + " |")
PYEOF
