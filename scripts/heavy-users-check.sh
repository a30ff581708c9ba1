#!/usr/bin/env bash
# Issue 12's check on MovieLens latest-small: imports the folder and trains into a fresh data
# directory, serves on a loopback port, fetches the top-50 list of every user with more than 1,000
# ratings, and counts (a) slots holding a movie the user rated and (b) lists whose scores rise
# somewhere down the list or leave [0, 1].
#
#   scripts/heavy-users-check.sh [CAIRN_BINARY] [ML_LATEST_SMALL_DIR] [PORT]
#
# Defaults: target/release/cairn, ../shared/data/ml-latest-small, 18431. Prints one line per user
# and a total; exits 1 when any seen slot or out-of-order list was found.
set -euo pipefail

bin=${1:-target/release/cairn}
ml=${2:-../shared/data/ml-latest-small}
port=${3:-18431}
data=$(mktemp -d)
export CAIRN_DATA_DIR="$data" CAIRN_SERVER__PORT="$port" CAIRN_TRAIN__INTERVAL_SECS=0 CAIRN_LOG=warn

pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$data"
}
trap cleanup EXIT

"$bin" import movielens "$ml" >/dev/null
"$bin" train >/dev/null
"$bin" serve >"$data/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.5
done

python3 - "$ml/ratings.csv" "$port" <<'EOF'
import csv, json, sys, urllib.request
from collections import defaultdict

ratings, port = sys.argv[1], sys.argv[2]
rated = defaultdict(set)
with open(ratings, newline="") as f:
    for row in csv.DictReader(f):
        rated[row["userId"]].add(row["movieId"])
heavy = sorted((u for u, movies in rated.items() if len(movies) > 1000), key=int)
seen_slots = out_of_order = 0
for user in heavy:
    url = f"http://127.0.0.1:{port}/v1/users/{user}/recommendations?k=50"
    items = json.load(urllib.request.urlopen(url))["items"]
    seen = [r["item_id"] for r in items if r["item_id"] in rated[user]]
    scores = [r["score"] for r in items]
    ordered = all(0.0 <= s <= 1.0 for s in scores) and all(
        a >= b for a, b in zip(scores, scores[1:])
    )
    seen_slots += len(seen)
    out_of_order += not ordered
    print(f"user {user}: {len(rated[user])} rated, {len(items)} listed, "
          f"{len(seen)} seen slots, scores {'ordered' if ordered else 'OUT OF ORDER'} "
          f"(first {scores[0]:.4f}, last {scores[-1]:.4f})")
print(f"{len(heavy)} users with more than 1,000 ratings: {seen_slots} seen slots in "
      f"{50 * len(heavy)} top-50 slots; {out_of_order} of {len(heavy)} lists out of order")
sys.exit(1 if seen_slots or out_of_order else 0)
EOF
