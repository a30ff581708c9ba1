#!/usr/bin/env python3
"""Events/s stored through a Redis stream (the `[stream]` consumer) vs through POST /v1/events,
against one running `cairn serve` whose consumer reads STREAM_KEY (started by
scripts/stream-bench.sh, which says how). Standard library only; the stream is written with
`redis-cli --pipe`.

Each phase uses new users, so every event is new (no duplicates). Prints one JSON line per figure.
"""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

BASE = os.environ["CAIRN_URL"]  # http://127.0.0.1:PORT
REDIS_PORT = os.environ["REDIS_PORT"]
KEY = os.environ.get("STREAM_KEY", "bench:events")
ITEMS = int(os.environ.get("ITEMS", "500"))
EVENTS = int(os.environ.get("EVENTS", "20000"))
SINGLE_EVENTS = int(os.environ.get("SINGLE_EVENTS", "2000"))
BATCH = int(os.environ.get("BATCH", "100"))
LABEL = os.environ.get("LABEL", "")


def request(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read().decode()


def metric(name):
    for line in request("GET", "/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def event(phase, n):
    return {
        "user_id": f"{phase}-u{n % 997}",
        "item_id": f"i{(n * 7919) % ITEMS}",
        "type": "view",
        "timestamp": 1_700_000_000 + n,
    }


def post_phase(phase, total, batch, connections):
    """`connections` keep-alive connections, each posting its share in batches of `batch`."""
    host = BASE.split("://", 1)[1]
    per = total // connections
    errors = []

    def worker(c):
        conn = http.client.HTTPConnection(host, timeout=120)
        start = c * per
        for lo in range(start, start + per, batch):
            events = [event(phase, n) for n in range(lo, min(lo + batch, start + per))]
            conn.request(
                "POST",
                "/v1/events",
                body=json.dumps({"events": events}),
                headers={"Content-Type": "application/json"},
            )
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                errors.append(body)
                return
        conn.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    if errors:
        sys.exit(f"POST /v1/events failed: {errors[0][:300]}")
    return per * connections, secs


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def stream_phase(phase, total):
    """XADDs `total` one-event entries with redis-cli --pipe, then waits until the consumer has
    stored them all; the time runs from the first XADD to the last event stored."""
    stored0 = metric("cairn_stream_events_stored_total") or 0.0
    payload = b"".join(
        resp("XADD", KEY, "*", "data", json.dumps(event(phase, n))) for n in range(total)
    )
    t0 = time.perf_counter()
    subprocess.run(
        ["redis-cli", "-p", REDIS_PORT, "--pipe"],
        input=payload,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    produced = time.perf_counter() - t0
    while (metric("cairn_stream_events_stored_total") or 0.0) < stored0 + total:
        time.sleep(0.01)
    secs = time.perf_counter() - t0
    return total, secs, produced


def emit(**fields):
    fields["label"] = LABEL
    print(json.dumps(fields), flush=True)


def wait_up():
    for _ in range(600):
        try:
            request("GET", "/healthz")
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("the server did not come up")


def crash_start(state_file, pid, total):
    """XADDs `total` entries, lets the consumer store part of them, then kill -9 the server."""
    before = metric("cairn_events")
    stored0 = metric("cairn_stream_events_stored_total") or 0.0
    payload = b"".join(
        resp("XADD", KEY, "*", "data", json.dumps(event("crash", n))) for n in range(total)
    )
    subprocess.run(["redis-cli", "-p", REDIS_PORT, "--pipe"], input=payload, check=True,
                   stdout=subprocess.DEVNULL)
    while (metric("cairn_stream_events_stored_total") or 0.0) < stored0 + total // 4:
        time.sleep(0.005)
    os.kill(pid, 9)
    with open(state_file, "w") as f:
        json.dump({"before": before, "total": total}, f)


def crash_verify(state_file):
    """After the restart: waits until the stream is drained and checks every event is stored once."""
    with open(state_file) as f:
        state = json.load(f)
    wait_up()
    while not (metric("cairn_stream_connected") == 1.0 and metric("cairn_stream_lag") == 0.0
               and metric("cairn_stream_pending") == 0.0):
        time.sleep(0.05)
    stored_after = metric("cairn_events")
    expected = state["before"] + state["total"]
    emit(check="kill -9 during stream ingestion, then restart", entries=state["total"],
         events_before=state["before"], events_after=stored_after, expected=expected,
         lost=expected - stored_after if stored_after < expected else 0,
         stored_twice=stored_after - expected if stored_after > expected else 0,
         redelivered_duplicates_skipped=metric("cairn_stream_events_duplicate_total"),
         stored_after_restart=metric("cairn_stream_events_stored_total"))
    if stored_after != expected:
        sys.exit(f"stored {stored_after} events after the crash, expected {expected}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "crash-start":
        return crash_start(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    if len(sys.argv) > 1 and sys.argv[1] == "crash-verify":
        return crash_verify(sys.argv[2])
    for _ in range(600):
        try:
            request("GET", "/healthz")
            break
        except OSError:
            time.sleep(0.1)
    request("POST", "/v1/items", {"items": [{"id": f"i{i}"} for i in range(ITEMS)]})
    while metric("cairn_stream_connected") != 1.0:
        time.sleep(0.05)

    n, secs = post_phase("post1", SINGLE_EVENTS, 1, 1)
    emit(path="POST /v1/events", events_per_request=1, connections=1, events=n,
         seconds=round(secs, 3), events_per_s=round(n / secs, 1))
    n, secs = post_phase("post100", EVENTS, BATCH, 1)
    emit(path="POST /v1/events", events_per_request=BATCH, connections=1, events=n,
         seconds=round(secs, 3), events_per_s=round(n / secs, 1))
    n, secs = post_phase("post100x4", EVENTS, BATCH, 4)
    emit(path="POST /v1/events", events_per_request=BATCH, connections=4, events=n,
         seconds=round(secs, 3), events_per_s=round(n / secs, 1))
    n, secs, produced = stream_phase("stream", EVENTS)
    emit(path="redis stream", events_per_entry=1, consumer_batch=BATCH, events=n,
         seconds=round(secs, 3), xadd_seconds=round(produced, 3),
         events_per_s=round(n / secs, 1),
         dead_letters=metric("cairn_stream_dead_letters_total"),
         lag=metric("cairn_stream_lag"), pending=metric("cairn_stream_pending"))
    total = metric("cairn_events")
    expected = SINGLE_EVENTS + 2 * EVENTS + EVENTS
    emit(check="events stored", stored=total, expected=expected)
    if total != expected:
        sys.exit(f"stored {total} events, expected {expected}")


if __name__ == "__main__":
    main()
