"""Starts the real `cairn serve` over a demo data directory, for the browser tests and the
screenshot script. Nothing here downloads anything: the binary is the one cargo built."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CAIRN_BIN", os.path.join(ROOT, "target", "debug", "cairn"))
# A small shop, so that a debug build trains it in seconds; the ranker off for the same reason.
DEMO = ["--users", "300", "--items", "400", "--events", "8000", "--seed", "7"]
ENV = dict(os.environ, CAIRN_TRAIN__RANKER__ENABLED="false", RUST_LOG="warn")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def cairn(data_dir, *args, check=True):
    return subprocess.run([BIN, "--data-dir", data_dir, *args], env=ENV, check=check,
                          capture_output=True, text=True)


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Server:
    """`cairn serve` on 127.0.0.1 with a free port, over `data_dir`."""

    def __init__(self, data_dir, env=None):
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [BIN, "--data-dir", data_dir, "serve", "--host", "127.0.0.1", "--port", "0"],
            env=dict(ENV, **(env or {})), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (http://\S+)", line)
        if not m:
            self.stop()
            raise RuntimeError(f"cairn serve did not start: {line!r}")
        self.base = m.group(1)
        deadline = time.time() + 600
        while time.time() < deadline:
            status, _ = http("GET", self.base + "/readyz")
            if status == 200:
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("cairn serve was not ready within 10 minutes")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def demo_dir():
    """A fresh data directory with the demo shop, one trained model and one evaluation report."""
    d = tempfile.mkdtemp(prefix="cairn-dash-")
    cairn(d, "demo", *DEMO)
    report = os.path.join(d, "reports", "example")
    os.makedirs(report)
    # A stand-in for `cairn eval --out DATA_DIR/reports/example`: the dashboard lists and opens
    # any report.html there.
    with open(os.path.join(report, "report.html"), "w") as f:
        f.write("<!doctype html><html><head><meta charset=\"utf-8\"><title>Cairn evaluation: "
                "example</title><style>body{font-family:sans-serif}</style></head><body>"
                "<h1>Cairn evaluation: example</h1><p>A fixture report.</p></body></html>")
    # A file with bad rows only, imported: the data-quality page lists them (exit status 3).
    bad = os.path.join(d, "bad-events.csv")
    with open(bad, "w") as f:
        f.write("user_id,item_id,type,value\n"
                "u-bad,no-such-item,view,\n"
                "u-bad,no-such-item-either,click,\n"
                "u-bad,,view,\n")
    cairn(d, "import", "events", bad, check=False)
    # A real `cairn eval` report as well, where the shared MovieLens data is there.
    ml100k = os.path.join(ROOT, "..", "shared", "data", "ml-100k")
    if os.environ.get("CAIRN_DASH_EVAL", "0") == "1" and os.path.isdir(ml100k):
        cairn(d, "eval", "--data", ml100k, "--models", "popularity,item-knn", "--k", "10,20",
              "--no-auc", "--bootstrap", "200",
              "--out", os.path.join(d, "reports", "ml-100k-popularity-item-knn"), check=False)
    return d


def second_version(server):
    """Trains until two versions passed the gate (an event first, so the data differs)."""
    for n in range(3):
        status, models = http("GET", server.base + "/v1/models")
        passed = [v for v in models["versions"] if v["status"] == "passed"]
        if len(passed) >= 2:
            return passed
        _, items = http("GET", server.base + "/v1/items?limit=5")
        item = items["items"][n]["id"]
        http("POST", server.base + "/v1/events",
             {"events": [{"user_id": f"browser-test-{n}", "item_id": item, "type": "purchase"}]})
        http("POST", server.base + "/v1/train")
    raise RuntimeError("could not get two passed model versions")


def remove(path):
    shutil.rmtree(path, ignore_errors=True)
