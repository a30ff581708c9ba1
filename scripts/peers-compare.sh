#!/usr/bin/env bash
# Runs the peers harness (../shared/peers/run_peers.py) and `cairn eval` on the same split folders in one
# run and writes one combined table (peer, Cairn, Cairn/peer) to $OUT/compare.md.
#
#   scripts/peers-compare.sh [--pairs pop=popularity,als-f64=als] [--no-auc] SPLIT_DIR...
#
# Pairs are peer-model=Cairn-ModelSpec-name. Environment: PEERS_DIR (default ../shared/peers),
# PEERS_PYTHON (default ~/.cache/peers-venv/bin/python), CAIRN (default: builds and uses
# target/release/cairn), OUT (default target/peers-compare).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
PEERS_PYTHON="${PEERS_PYTHON:-$HOME/.cache/peers-venv/bin/python}"
OUT="${OUT:-$ROOT/target/peers-compare}"
if [[ -z "${CAIRN:-}" ]]; then
  (cd "$ROOT" && cargo build --release -p cairn-cli --quiet)
  CAIRN="$ROOT/target/release/cairn"
fi
[[ -f "$PEERS_DIR/run_peers.py" ]] || { echo "no run_peers.py in $PEERS_DIR (set PEERS_DIR)" >&2; exit 2; }
[[ -x "$PEERS_PYTHON" ]] || { echo "no peers venv python at $PEERS_PYTHON (run the peers' setup.sh, or set PEERS_PYTHON)" >&2; exit 2; }
exec "$PEERS_PYTHON" "$ROOT/scripts/peers_compare.py" --peers-dir "$PEERS_DIR" --cairn "$CAIRN" --out "$OUT" "$@"
