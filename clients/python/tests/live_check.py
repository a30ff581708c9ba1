"""Drives the generated client against a running Cairn server: `python3 live_check.py BASE_URL`.

Run by `cargo test -p cairn-cli --test python_client` (which starts the server on a loopback port);
written by hand, not generated. Exits non-zero, saying what differed, on the first failure.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cairn_client import CairnError, Client  # noqa: E402


def check(condition, what):
    if not condition:
        raise SystemExit(f"live check failed: {what}")


def main(base_url):
    client = Client(base_url, timeout=120)
    check(client.healthz()["status"] == "ok", "healthz says ok")

    items = [{"id": f"i{n}", "title": f"Item {n}", "categories": ["even" if n % 2 == 0 else "odd"],
              "properties": {"price": float(n)}} for n in range(10)]
    check(client.put_items({"items": items})["upserted"] == 10, "ten items stored")
    check(client.put_item("kettle-1", {"title": "Blue kettle"})["id"] == "kettle-1",
          "PUT fills the id from the path")
    check(client.get_item("i3")["properties"]["price"] == 3.0, "an item reads back")

    events = []
    for u in range(8):
        for n in range(5):
            events.append({"user_id": f"u{u}", "item_id": f"i{(u + n) % 10}", "type": "view"})
    events[0]["event_id"] = "e-1"
    check(client.post_events({"events": events})["stored"] == len(events), "events stored")
    again = client.post_events({"events": [events[0]]})
    check(again == {"stored": 0, "duplicates": 1}, f"a retried event is a duplicate: {again}")

    trained = client.train()
    check(trained["users"] == 8, f"trained on 8 users: {trained}")
    check(client.readyz()["model_version"] == trained["version"], "ready with the trained model")

    recs = client.for_user("u0", k=3, exclude_seen=True)
    ids = [r["item_id"] for r in recs["items"]]
    check(len(ids) == 3, f"three recommendations: {recs}")
    check(not set(ids) & {f"i{n}" for n in range(5)}, f"seen items are excluded: {ids}")
    odd = client.for_user_with_rules("u1", {"k": 2, "filter": 'category == "odd"'})
    check(all(int(r["item_id"][1:]) % 2 == 1 for r in odd["items"]), f"the filter holds: {odd}")
    check(len(client.popular(k=4)["items"]) == 4, "four popular items")
    check(client.similar("i1", k=2)["items"], "similar items")

    batch = client.batch_recommendations({"requests": [
        {"user_id": "u0", "k": 3, "exclude_seen": True},
        {"user_id": "u2", "k": 0},
    ]})
    results = batch["results"]
    check([r["status"] for r in results] == [200, 400], f"per-request statuses: {batch}")
    batch_ids = [r["item_id"] for r in results[0]["recommendations"]["items"]]
    check(len(batch_ids) == 3 and not set(batch_ids) & {f"i{n}" for n in range(5)},
          f"the batch's list is like the single-user route's: {batch_ids}")
    check(results[1]["error"]["code"] == "invalid_argument", f"the bad request's code: {results[1]}")

    try:
        client.get_item("no-such-item")
        check(False, "a missing item raises")
    except CairnError as e:
        check((e.status, e.code) == (404, "item_not_found"), f"404 item_not_found, not {e}")
    try:
        client.for_user("u0", filter="price <")
        check(False, "a bad filter raises")
    except CairnError as e:
        check(e.code == "invalid_expression" and e.field == "filter", f"invalid_expression on filter: {e}")

    check(client.delete_user("u7")["events_removed"] == 5, "erasure removes the user's events")
    check("cairn_http_requests_total" in client.metrics(), "metrics are text")
    print("python client live check: ok")


if __name__ == "__main__":
    main(sys.argv[1])
