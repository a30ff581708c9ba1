"""Screenshots of every dashboard page at 1280 and 390 px wide (scripts/dashboard-screenshots.sh).

Usage: python screenshots.py OUT_DIR"""

import os
import sys
import urllib.parse

from playwright.sync_api import sync_playwright

import cairn_server as cs


def experiment_traffic(server):
    """An A/B experiment on `home` with impressions and clicks from 200 users."""
    status, body = cs.http("POST", server.base + "/v1/experiments", {
        "id": "home-ab", "description": "the cart configuration on the home page",
        "placement": "home", "planned_users": 2000,
        "variants": [{"name": "control"}, {"name": "cart-config", "placement": "cart"}]})
    assert status == 200, body
    _, users = cs.http("GET", server.base + "/v1/users?limit=200")
    for n, u in enumerate(users["users"]):
        uid = urllib.parse.quote(u["id"])
        _, lst = cs.http("GET", f"{server.base}/v1/users/{uid}/recommendations?placement=home")
        items = [i["item_id"] for i in lst["items"][:4]]
        if not items:
            continue
        cs.http("POST", server.base + "/v1/impressions", {
            "recommendation_id": lst["recommendation_id"], "user_id": u["id"],
            "items": [{"item_id": i, "position": p + 1} for p, i in enumerate(items)]})
        # Deterministic clicks: every third user clicks the first item, cart-config users also
        # every fifth one the second.
        clicks = []
        if n % 3 == 0:
            clicks.append((items[0], 1))
        if lst.get("variant") == "cart-config" and n % 5 == 0 and len(items) > 1:
            clicks.append((items[1], 2))
        for k, (item, pos) in enumerate(clicks):
            cs.http("POST", server.base + "/v1/events", {"events": [{
                "event_id": f"shot-click-{n}-{k}", "user_id": u["id"], "item_id": item,
                "type": "click", "recommendation_id": lst["recommendation_id"], "position": pos}]})


def drift_events(server, shifted):
    """250 events of known users: spread over the catalog, or (shifted) on three items only."""
    _, users = cs.http("GET", server.base + "/v1/users?limit=50")
    _, items = cs.http("GET", server.base + "/v1/items?limit=100")
    ids = [i["id"] for i in items["items"]]
    events = []
    for n in range(250):
        item = ids[n % 3] if shifted else ids[(n * 7) % len(ids)]
        kind = "purchase" if n % 10 == 0 else "view"
        events.append({"user_id": users["users"][n % len(users["users"])]["id"],
                       "item_id": item, "type": kind})
    cs.http("POST", server.base + "/v1/events", {"events": events})


def main(out):
    os.makedirs(out, exist_ok=True)
    os.environ["CAIRN_DASH_EVAL"] = "1"  # a real `cairn eval` report too, where the data is
    d = cs.demo_dir()
    # 10-second drift windows, so that the drift page has closed windows to draw.
    server = cs.Server(d, env={"CAIRN_DRIFT__WINDOW_SECS": "10", "CAIRN_DRIFT__MIN_WINDOW_EVENTS": "100"})
    try:
        passed = cs.second_version(server)
        experiment_traffic(server)
        # Some traffic, so the overview's sampler has something to draw.
        _, users = cs.http("GET", server.base + "/v1/users?limit=3")
        user = users["users"][1]["id"]
        _, items = cs.http("GET", server.base + "/v1/items?limit=1")
        item = items["items"][0]
        category = item["categories"][0]
        pages = {
            "overview": "/",
            "models": "/models",
            "models-confirm": "/models/confirm?action=promote&version=" + passed[0]["version"],
            "items": "/items?category=" + urllib.parse.quote(category),
            "item": "/items/" + urllib.parse.quote(item["id"]),
            "users": "/users",
            "user": "/users/" + urllib.parse.quote(user),
            "preview": "/preview?user=" + urllib.parse.quote(user) + "&placement=home&compare=cart&k=8",
            "preview-versions": "/preview?user=" + urllib.parse.quote(user) + "&placement=home&k=8&version="
            + passed[0]["version"],
            "preview-filter": "/preview?user=" + urllib.parse.quote(user) + "&placement=home&k=8&filter="
            + urllib.parse.quote(f'category == "{category}"'),
            "experiments": "/experiments",
            "experiment": "/experiments/home-ab",
            "experiment-confirm": "/experiments/home-ab/confirm?action=ship&variant=cart-config",
            "drift": "/drift",
            "reports": "/reports",
        }
        real = "ml-100k-popularity-item-knn"
        has_real = os.path.isdir(os.path.join(d, "reports", real))
        pages["report"] = "/reports/" + (real if has_real else "example")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=cs.CHROMIUM, args=cs.CHROMIUM_ARGS)
            for width in (1280, 390):
                context = browser.new_context(viewport={"width": width, "height": 800})
                page = context.new_page()
                # Wait for three samples' worth of traffic (the sampler takes one every 10 s),
                # and as many drift windows: the demo's mix, then views of three items only.
                if width == 1280:
                    for n in range(4):
                        for _ in range(40):
                            cs.http("GET", f"{server.base}/v1/users/{urllib.parse.quote(user)}/recommendations")
                        drift_events(server, shifted=n == 3)
                        page.wait_for_timeout(10_500)
                for name, path in pages.items():
                    page.goto(server.base + path)
                    page.screenshot(path=os.path.join(out, f"{name}-{width}.png"), full_page=True)
                    print(f"{name}-{width}.png")
                context.close()
            browser.close()
    finally:
        server.stop()
        cs.remove(d)


if __name__ == "__main__":
    main(sys.argv[1])
