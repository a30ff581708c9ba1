#!/usr/bin/env python3
"""Server-side render time of each dashboard page: requests every page N times from a running
`cairn serve` (open mode: loopback, no API key) and reports the handler time the server puts in
its `Server-Timing: app;dur=MS` header (the whole handler, engine calls included, without the
network), as median / p90 / max over the N requests.

Usage: scripts/dashboard_timing.py BASE_URL [N [USER_ID]]   (e.g. http://127.0.0.1:18480 20)
USER_ID: the user of the user and preview pages (default: one of GET /v1/users; give one where the
store holds events but no user rows, as in `cairn-bench serve-setup`'s data, e.g. user-1)."""

import json
import re
import statistics
import sys
import urllib.parse
import urllib.request


def get(base, path, cookie=None):
    req = urllib.request.Request(base + path)
    if cookie:
        req.add_header("Cookie", cookie)
    try:
        r = urllib.request.urlopen(req, timeout=120)
    except urllib.error.HTTPError as e:
        r = e
    body = r.read()
    return r.status, r.headers, body


def main():
    base = sys.argv[1].rstrip("/")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    status, headers, _ = get(base, "/")
    assert status == 200, f"GET / answered {status}: the dashboard must be open (no API key)"
    cookie = headers["Set-Cookie"].split(";")[0]
    _, _, body = get(base, "/v1/items?limit=1")
    item = json.loads(body)["items"][0]
    if len(sys.argv) > 3:
        user = sys.argv[3]
    else:
        _, _, body = get(base, "/v1/users?limit=2")
        users = json.loads(body)["users"]
        if not users:
            sys.exit("the store has no user rows (events only, e.g. serve-setup's data): "
                     "give a user id with events as the third argument")
        user = users[-1]["id"]
    category = (item.get("categories") or [""])[0]
    q = urllib.parse.quote
    pages = [
        ("overview", "/"),
        ("models", "/models"),
        ("experiments (list and create form)", "/experiments"),
        ("data quality and drift", "/drift"),
        ("items (first page)", "/items"),
        ("items, category filter", "/items?category=" + q(category)),
        ("items, text search with no match (reads 5000)", "/items?q=" + q("no-such-text")),
        ("item page (similar items, popularity over time)", "/items/" + q(item["id"])),
        ("users (first page)", "/users"),
        ("user page (timeline)", "/users/" + q(user)),
        ("preview, every placement", "/preview?user=" + q(user)),
        ("preview, two placements + filter", "/preview?user=" + q(user)
         + "&placement=home&compare=cart&filter=" + q(f'category == "{category}"')),
        ("evaluation reports", "/reports"),
    ]
    _, _, body = get(base, "/v1/models")
    models = json.loads(body)
    others = [v["version"] for v in models["versions"]
              if v["version"] != models.get("champion") and v["status"] != "refused"
              and v.get("artifact_present", True)]
    if others:
        # The first request reads that version's model file; the others find it loaded.
        pages.append(("preview, champion beside another version", "/preview?user=" + q(user)
                      + "&placement=home&version=" + q(others[-1])))
    _, _, body = get(base, "/v1/experiments")
    for e in json.loads(body)["experiments"][:2]:
        pages.append((f"experiment page ({e['type']}, with its analysis)",
                      "/experiments/" + q(e["id"])))
    print(f"| page | path | median ms | p90 ms | max ms |")
    print(f"|---|---|---|---|---|")
    for name, path in pages:
        times = []
        for _ in range(n):
            status, headers, _ = get(base, path, cookie)
            assert status == 200, f"{path} answered {status}"
            m = re.search(r"dur=([0-9.]+)", headers.get("Server-Timing", ""))
            times.append(float(m.group(1)))
        times.sort()
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        shown = path if len(path) < 60 else path[:57] + "..."
        print(f"| {name} | `{shown}` | {statistics.median(times):.2f} | {p90:.2f} | {times[-1]:.2f} |")


if __name__ == "__main__":
    main()
