#!/usr/bin/env bash
# Spark MLlib's implicit ALS (jobs/spark/train_als.py, local mode) against Cairn's own ALS on a
# strong-generalization split folder of the peer harness: the same training rows, the same
# held-out users folded in against the item factors, the same metrics (docs/BENCHMARKS.md,
# docs/SPARK.md). Prints one JSON line per run.
#
#   scripts/spark-vs-cairn.sh SPLIT_DIR [OUT_DIR]
#
# Env: RANK (128), ITERATIONS (15), ALPHA (10), SPARK_REG (space-separated regParams, "0.5 1.0"),
# CAIRN_REG (Cairn's λ, 100), MASTER (local[2]), PYTHON (python3, with pyspark and numpy),
# B (target/release/cairn-bench).
set -euo pipefail
split=${1:?usage: scripts/spark-vs-cairn.sh SPLIT_DIR [OUT_DIR]}
out=${2:-$(mktemp -d)}
rank=${RANK:-128}; iterations=${ITERATIONS:-15}; alpha=${ALPHA:-10}
spark_reg=${SPARK_REG:-"0.5 1.0"}; cairn_reg=${CAIRN_REG:-100}
master=${MASTER:-local[2]}; python=${PYTHON:-python3}; bench=${B:-target/release/cairn-bench}
cd "$(dirname "$0")/.."
mkdir -p "$out"
echo "# $(date -u +%FT%TZ) $(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# Cairn's ALS, the same rank, α and iterations; fit time is the bench's `fit_s`.
"$bench" strong "$split" --spec "{\"model\":\"als\",\"factors\":$rank,\"iterations\":$iterations,\"regularization\":$cairn_reg.0,\"alpha\":$alpha.0}" \
  | tee "$out/cairn-als.jsonl"

for reg in $spark_reg; do
  dir="$out/spark-r$reg"
  "$python" jobs/spark/train_als.py --csv --input "$split/train.csv" --out "$dir" \
    --rank "$rank" --reg-param "$reg" --alpha "$alpha" --iterations "$iterations" --master "$master" \
    > "$dir.log" 2>&1 || { tail -n 20 "$dir.log" >&2; exit 1; }
  mean=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['mean_user_interactions'])" "$dir/manifest.json")
  # Fold-in λ: MLlib's penalty of the mean user (reg × mean interactions), and ×0.5, ×2, picked
  # on the validation users.
  grid=$("$python" -c "import sys; r,m=float(sys.argv[1]),float(sys.argv[2]); print(','.join(f'{r*m*f:.2f}' for f in (0.5,1,2)))" "$reg" "$mean")
  "$bench" strong-factors "$split" "$dir" --fold-in-regularization "$grid" | tee -a "$out/spark-als.jsonl"
done
echo "# results in $out" >&2
