#!/usr/bin/env bash
# Crash durability: kill -9 cycles of `cairn serve` during sustained ingestion by 4 writers (batches of
# 10 events with client ids), each in-flight batch retried with its event ids after the restart, then
# the events counted through the API: acknowledged events lost, events stored twice, batches stored in
# part. It is the test crates/cairn-cli/tests/crash.rs, which runs 3 cycles in CI, with more cycles;
# it prints its tally and fails on any loss, duplicate or partial batch. Figures: docs/RELIABILITY.md.
#
# Usage: scripts/crash-cycles.sh [CYCLES]     (default 20)
#   PROFILE=release  builds and runs the release binary instead of the debug one
set -euo pipefail

cd "$(dirname "$0")/.."
CYCLES=${1:-20}
PROFILE_ARGS=()
if [[ ${PROFILE:-debug} == release ]]; then
    PROFILE_ARGS=(--release)
fi

CAIRN_CRASH_CYCLES=$CYCLES cargo test --locked "${PROFILE_ARGS[@]}" -p cairn-cli --test crash -- --nocapture
