#!/usr/bin/env bash
# Screenshots of every dashboard page at 1280 and 390 px wide into docs/dashboard/, taken in
# headless Chromium against the real `cairn serve` over the browser tests' demo data directory
# (tests/browser/screenshots.py; set-up as scripts/browser-tests.sh does it).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/browser-tests.sh --run screenshots.py "$PWD/docs/dashboard"
