#!/usr/bin/env python3
"""Real clients' latency and errors against a running Cairn, first alone, then while IDLE idle TCP
connections (opened, nothing sent) and SLOW slow-header clients (one header line every few seconds,
never the end of the header) are held open. A connection the server closes is counted, with how long
it lived, and opened again, so the count held stays at IDLE + SLOW for the whole phase.

Prints one JSON object. Loopback only; bounded in time. Used by scripts/idle-connections.sh.
"""

import argparse
import http.client
import json
import multiprocessing
import random
import resource
import selectors
import socket
import statistics
import threading
import time


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def real_clients(host, port, threads, seconds, users):
    """Closed loop: each thread sends its next request when the last answered, on a kept-alive
    connection (opened again after an error). Alternates recommendations and popular."""
    latencies, errors, samples = [], [], []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(seed):
        rng = random.Random(seed)
        conn = None
        mine, bad = [], 0
        while time.monotonic() < stop:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=30)
            if rng.random() < 0.5:
                path = f"/v1/users/user-{rng.randint(1, users):04}/recommendations?k=10"
            else:
                path = "/v1/popular?k=10"
            began = time.monotonic()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    bad += 1
                    with lock:
                        samples.append(f"{response.status} {path}")
                else:
                    mine.append(time.monotonic() - began)
            except Exception as e:  # noqa: BLE001 - every failure is an error to count
                bad += 1
                with lock:
                    samples.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(mine)
            errors.append(bad)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    ms = [x * 1000 for x in latencies]
    return {
        "seconds": seconds,
        "threads": threads,
        "ok": len(ms),
        "errors": sum(errors),
        "error_samples": samples[:5],
        "rps": round(len(ms) / seconds, 1),
        "p50_ms": round(percentile(ms, 0.50), 2) if ms else None,
        "p99_ms": round(percentile(ms, 0.99), 2) if ms else None,
        "max_ms": round(max(ms), 2) if ms else None,
    }


class Holder:
    """Holds IDLE silent and SLOW slow-header connections open until stopped, reopening any the
    server closes."""

    def __init__(self, host, port, idle, slow, slow_every, stop_flag):
        self.host, self.port = host, port
        self.want = {"idle": idle, "slow": slow}
        self.slow_every = slow_every
        self.sel = selectors.DefaultSelector()
        self.conns = {}  # socket -> [kind, opened, next_line_at, connected]
        self.closed = {"idle": [], "slow": []}  # lifetimes in seconds
        self.connect_failures = 0
        self.stop_flag = stop_flag
        self.held_samples = []

    def open(self, kind):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((self.host, self.port))
        except BlockingIOError:
            pass
        except OSError:
            self.connect_failures += 1
            s.close()
            return
        now = time.monotonic()
        self.conns[s] = [kind, now, now, False]
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def drop(self, s, counted=True):
        kind, opened, _, _ = self.conns.pop(s)
        self.sel.unregister(s)
        s.close()
        if counted:
            self.closed[kind].append(time.monotonic() - opened)

    def run(self):
        for kind, n in self.want.items():
            for _ in range(n):
                self.open(kind)
        while not self.stop_flag.is_set():
            for key, events in self.sel.select(timeout=0.2):
                s = key.fileobj
                state = self.conns.get(s)
                if state is None:
                    continue
                if events & selectors.EVENT_WRITE and not state[3]:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        self.connect_failures += 1
                        self.drop(s, counted=False)
                        continue
                    state[3] = True
                    self.sel.modify(s, selectors.EVENT_READ)
                    if state[0] == "slow":
                        try:
                            s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                        except OSError:
                            self.drop(s)
                            continue
                if events & selectors.EVENT_READ:
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        self.drop(s)
            now = time.monotonic()
            for s, state in list(self.conns.items()):
                if state[0] == "slow" and state[3] and now >= state[2] + self.slow_every:
                    state[2] = now
                    try:
                        s.send(b"X-Slow: 1\r\n")
                    except OSError:
                        self.drop(s)
            counts = {k: 0 for k in self.want}
            for state in self.conns.values():
                counts[state[0]] += 1
            for kind, n in self.want.items():
                for _ in range(n - counts[kind]):
                    self.open(kind)
            self.held_samples.append(len(self.conns))
        for s in list(self.conns):
            self.drop(s, counted=False)

    def summary(self):
        out = {"connect_failures": self.connect_failures}
        for kind, lives in self.closed.items():
            out[f"{kind}_closed_by_server"] = len(lives)
            out[f"{kind}_median_life_s"] = round(statistics.median(lives), 1) if lives else None
        held = self.held_samples
        out["held_min"] = min(held) if held else 0
        out["held_median"] = int(statistics.median(held)) if held else 0
        return out


def hold(host, port, idle, slow, slow_every, stop_flag, results):
    """The holder in its own process, so that it takes no time from the measuring clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    holder = Holder(host, port, idle, slow, slow_every, stop_flag)
    holder.run()
    results.put(holder.summary())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--slow", type=int, default=50)
    p.add_argument("--slow-every", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--users", type=int, default=1000)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    baseline = real_clients(args.host, args.port, args.threads, args.seconds, args.users)
    stop_flag, results = multiprocessing.Event(), multiprocessing.Queue()
    process = multiprocessing.Process(
        target=hold,
        args=(args.host, args.port, args.idle, args.slow, args.slow_every, stop_flag, results),
    )
    process.start()
    time.sleep(2)  # the connections are open before the clients start
    loaded = real_clients(args.host, args.port, args.threads, args.seconds, args.users)
    stop_flag.set()
    held = results.get(timeout=60)
    process.join()
    print(
        json.dumps(
            {
                "baseline": baseline,
                "with_idle_connections": loaded,
                "held": held,
                "idle": args.idle,
                "slow": args.slow,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
