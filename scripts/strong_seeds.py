#!/usr/bin/env python3
"""Means over split folders of the peers' and Cairn's strong-generalization results.

    strong_seeds.py OUT_DIR      (written by scripts/strong-seeds.sh: peers.jsonl, cairn-*.jsonl)

Every metric is averaged over the folders (each folder weighs the same), with the standard error of
that mean over folders. "Cairn, chosen on validation" takes, in each folder, the Cairn model with the
best validation NDCG@100; it is compared with the best peer of each metric (the peer model whose mean
is highest for that metric, which favours the peers), paired by folder.
"""
import glob
import json
import math
import os
import sys

METRICS = [("RecallLiang@20", "recall_liang_20"), ("RecallLiang@50", "recall_liang_50"),
           ("NDCG@100", "ndcg_100")]


def mean_se(xs):
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, float("nan")
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return m, math.sqrt(var / n)


def load(out):
    peers, cairn = {}, {}
    for line in open(os.path.join(out, "peers.jsonl")):
        d = json.loads(line)
        if d.get("stage") != "test":
            continue
        peers.setdefault(d["model"], {})[d["split"]] = {
            "test": {h: d[h] for h, _ in METRICS},
            "users": d.get("n_eval_users", 0),
        }
    for path in glob.glob(os.path.join(out, "cairn-*.jsonl")):
        for line in open(path):
            d = json.loads(line)
            split = os.path.basename(d["split"].rstrip("/"))
            cairn.setdefault(d["model"], {})[split] = {
                "test": {h: d["test"][c] for h, c in METRICS},
                "validation": d["validation_ndcg_100"],
                "users": d["test"]["users"],
            }
    return peers, cairn


def main():
    out = sys.argv[1]
    peers, cairn = load(out)
    folds = sorted(set.intersection(*[set(v) for v in list(peers.values()) + list(cairn.values())]))
    if not folds:
        sys.exit("no folder has results from every model")
    chosen = {}
    for f in folds:
        name = max(cairn, key=lambda m: cairn[m][f]["validation"])
        chosen[f] = {"test": cairn[name][f]["test"], "model": name}
    cairn["Cairn, chosen on validation"] = chosen
    users = sum(next(iter(peers.values()))[f]["users"] for f in folds)
    print(f"{len(folds)} folders ({', '.join(folds)}); {users} test users in all.\n")
    print("| model | " + " | ".join(h for h, _ in METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for side, models in (("peer", peers), ("Cairn", cairn)):
        for m in sorted(models):
            cells = []
            for h, _ in METRICS:
                mu, se = mean_se([models[m][f]["test"][h] for f in folds])
                cells.append(f"{mu:.4f} ± {se:.4f}")
            label = m if m.startswith("Cairn,") else f"{side} {m}"
            print(f"| {label} | " + " | ".join(cells) + " |")
    picks = {}
    for f in folds:
        picks[chosen[f]["model"]] = picks.get(chosen[f]["model"], 0) + 1
    print("\nCairn's choice per folder: " + ", ".join(f"{m} × {n}" for m, n in sorted(picks.items())))
    print("\n| comparison | metric | Cairn | peer | ratio | paired difference (± s.e.) |")
    print("|---|---|---|---|---|---|")

    def row(label, a, b, h):
        """One metric of Cairn's results `a` against a peer's `b`, paired by folder."""
        xa = [a[f]["test"][h] for f in folds]
        xb = [b[f]["test"][h] for f in folds]
        ma, mb = sum(xa) / len(xa), sum(xb) / len(xb)
        d, se = mean_se([p - q for p, q in zip(xa, xb)])
        print(f"| {label} | {h} | {ma:.4f} | {mb:.4f} | {ma / mb:.3f} | {d:+.4f} ± {se:.4f} |")

    for h, _ in METRICS:
        best = max(peers, key=lambda m: sum(peers[m][f]["test"][h] for f in folds))
        row(f"Cairn chosen vs best peer ({best})", chosen, peers[best], h)
    for f_ in ("64", "128"):
        name = f"als-f{f_}"
        if name in cairn and name in peers:
            for h, _ in METRICS:
                row(f"Cairn ALS {f_} f vs implicit ALS {f_} f", cairn[name], peers[name], h)

if __name__ == "__main__":
    main()
