#!/usr/bin/env bash
# The dashboard's end-to-end tests in headless Chromium (tests/browser/, Python Playwright driving
# Debian's /usr/bin/chromium; Playwright never downloads a browser here). Installs what is missing:
# chromium with apt-get, Playwright and pytest (pinned) in a virtual environment. Builds the cairn
# binary when CAIRN_BIN is not given. Prints pytest's summary line; exits non-zero on a failure,
# 3 when chromium or the Python packages cannot be installed (CI says so and goes on).
#
# Usage: scripts/browser-tests.sh [PYTEST ARGS...]
#        scripts/browser-tests.sh --run SCRIPT.py [ARGS...]   (a script of tests/browser instead,
#                                                             e.g. scripts/dashboard-screenshots.sh)
#
# Environment (all optional):
#   CAIRN_BROWSER_VENV  the virtual environment (default ~/.cache/cairn-browser-venv)
#   CAIRN_BIN           the cairn binary (default target/debug/cairn, built with cargo)
#   CHROMIUM            the browser (default /usr/bin/chromium)
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_VERSION=1.65.2
PYTEST_VERSION=9.2.0
VENV=${CAIRN_BROWSER_VENV:-$HOME/.cache/cairn-browser-venv}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
# Playwright must use the system browser, never fetch one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

log() { echo "[browser-tests.sh] $*" >&2; }

if [ ! -x "$CHROMIUM" ]; then
  log "installing chromium (apt-get)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if ! ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        chromium chromium-driver >/dev/null); then
    log "cannot install chromium on this machine"
    exit 3
  fi
fi

if ! "$VENV/bin/python" -c "import playwright, pytest" 2>/dev/null \
   || ! "$VENV/bin/pip" show playwright 2>/dev/null | grep -q "^Version: $PLAYWRIGHT_VERSION$"; then
  log "installing playwright==$PLAYWRIGHT_VERSION and pytest==$PYTEST_VERSION into $VENV"
  if ! (python3 -m venv "$VENV" \
        && "$VENV/bin/pip" install -q "playwright==$PLAYWRIGHT_VERSION" "pytest==$PYTEST_VERSION"); then
    log "cannot install playwright and pytest"
    exit 3
  fi
fi

if [ -z "${CAIRN_BIN:-}" ]; then
  cargo build -q --locked -p cairn-cli
  export CAIRN_BIN="$PWD/target/debug/cairn"
fi

cd tests/browser
if [ "${1:-}" = "--run" ]; then
  shift
  exec "$VENV/bin/python" "$@"
fi
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
