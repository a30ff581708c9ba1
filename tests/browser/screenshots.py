"""Screenshots of every dashboard page at 1280 and 390 px wide (scripts/dashboard-screenshots.sh).

Usage: python screenshots.py OUT_DIR"""

import os
import sys
import urllib.parse

from playwright.sync_api import sync_playwright

import cairn_server as cs


def main(out):
    os.makedirs(out, exist_ok=True)
    os.environ["CAIRN_DASH_EVAL"] = "1"  # a real `cairn eval` report too, where the data is
    d = cs.demo_dir()
    server = cs.Server(d)
    try:
        passed = cs.second_version(server)
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
            "preview-filter": "/preview?user=" + urllib.parse.quote(user) + "&placement=home&k=8&filter="
            + urllib.parse.quote(f'category == "{category}"'),
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
                # Wait for three samples' worth of traffic (the sampler takes one every 10 s).
                if width == 1280:
                    for _ in range(3):
                        for _ in range(40):
                            cs.http("GET", f"{server.base}/v1/users/{urllib.parse.quote(user)}/recommendations")
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
