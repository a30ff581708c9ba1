#!/usr/bin/env python3
"""Side-by-side table of the peers harness and `cairn eval` on the same split folders.

    peers_compare.py --peers-dir ../shared/peers --out DIR --pairs pop=popularity,... SPLIT_DIR...

For every split folder: runs run_peers.py with the peer models, runs `cairn eval` with the paired Cairn
models (ModelSpec names) and writes one table with both and the ratio Cairn / peer. Where a Cairn model
is popularity, it also checks the ranked lists themselves against the harness's own popularity lists:
Cairn's lists are scored with metrics.topk_metrics (same metric code), and the score sequences of both
lists are compared rank by rank, which shows whether any difference is only the order of tied items.

explicit-ml100k: run_peers.py runs only Surprise models there, so popularity on u1..u5 is scored with
run_peers.py's own functions (known_user_stage, Popularity, evaluate) on each fold.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

RANK_COLS = ["RecallLiang@20", "RecallLiang@50", "NDCG@100", "Recall@20", "Precision@10", "MAP@10",
             "MRR@100", "AUC", "Coverage@100", "Novelty@10"]
RATING_COLS = ["RMSE", "MAE"]
RATING_PEERS = {"baselineonly", "svd", "svdpp"}


def sh(cmd, log):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.time()
    with open(log, "a") as fh:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log}")
    return r.stdout, time.time() - t0


def cairn_values(report, model):
    """Test-stage (or mean-over-folds) values of one Cairn model."""
    if report["fold_means"]:
        for f in report["fold_means"]:
            if f["model"] == model:
                return dict(f["metrics"])
        return None
    for st in report["stages"]:
        if st["name"] != "test":
            continue
        for m in st["models"]:
            if m["model"] == model:
                v = {k: s["mean"] for k, s in m["metrics"].items()}
                v.update(m["aggregates"])
                if m.get("rating"):
                    v["RMSE"], v["MAE"] = m["rating"]["rmse"], m["rating"]["mae"]
                v["fit_s"] = m["fit_s"]
                return v
    return None


def read_lists(path, users, items, K=100):
    """user,item,rank CSV -> (n_users, K) index array in the harness's indices, -1 padding."""
    import pandas as pd
    df = pd.read_csv(path, dtype={"user": str, "item": str})
    uidx = pd.Index(users.astype(str))
    iidx = pd.Index(items.astype(str))
    top = -np.ones((len(users), K), dtype=np.int64)
    r = uidx.get_indexer(df["user"])
    c = iidx.get_indexer(df["item"])
    ok = (r >= 0) & (c >= 0) & (df["rank"].to_numpy() <= K)
    top[r[ok], df["rank"].to_numpy()[ok] - 1] = c[ok]
    return top


def list_check(R, M, st, cairn_list_path, cairn_vals):
    """Cairn's popularity lists scored by metrics.py, and compared with the harness's own lists."""
    top_c = read_lists(cairn_list_path, np.asarray(st.eval_users), np.asarray(st.items))
    scored = M.topk_metrics(top_c, st.target, (10, 20, 50, 100))
    metric_gap = max(abs(scored[k] - cairn_vals[k]) for k in scored if k in cairn_vals and k != "n_eval_users")
    m = R.Popularity()
    m.fit(st)
    top_p = m.recommend(st, 100)
    keep = np.diff(st.target.indptr) > 0
    pop = m.pop
    sc = np.where(top_c >= 0, pop[np.maximum(top_c, 0)], -1.0)[keep]
    sp_ = np.where(top_p >= 0, pop[np.maximum(top_p, 0)], -1.0)[keep]
    same_scores = bool(np.array_equal(sc, sp_))
    same_lists = int((top_c[keep] == top_p[keep]).all(1).sum())
    return {"metrics_py_on_cairn_lists_max_abs_diff": float(metric_gap),
            "score_sequences_identical": same_scores,
            "users_with_identical_lists": same_lists, "users": int(keep.sum())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("splits", nargs="+")
    ap.add_argument("--peers-dir", required=True)
    ap.add_argument("--cairn", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pairs", default="pop=popularity",
                    help="peer=cairn model pairs; rating peers (baselineonly, svd, svdpp) are used on explicit-ml100k")
    ap.add_argument("--explicit-pairs", default="baselineonly=baseline,pop=popularity")
    ap.add_argument("--no-auc", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.peers_dir))
    import metrics as M  # noqa: E402
    import run_peers as R  # noqa: E402

    os.makedirs(args.out, exist_ok=True)
    log = os.path.join(args.out, "commands.log")
    rows, checks = [], []
    for split in args.splits:
        meta = json.load(open(os.path.join(split, "meta.json")))
        proto = meta["protocol"]
        name = os.path.basename(os.path.normpath(split))
        pairs = [p.split("=") for p in (args.explicit_pairs if proto == "explicit-ml100k" else args.pairs).split(",")]
        odir = os.path.join(args.out, name)
        os.makedirs(odir, exist_ok=True)
        peer_jsonl = os.path.join(odir, "peers.jsonl")
        if os.path.exists(peer_jsonl):
            os.remove(peer_jsonl)
        peer_vals = {}
        harness_models = [p for p, _ in pairs if proto != "explicit-ml100k" or p in RATING_PEERS]
        if harness_models:
            cmd = [sys.executable, os.path.join(args.peers_dir, "run_peers.py"), split, "--models",
                   ",".join(harness_models), "--out", peer_jsonl]
            if args.no_auc:
                cmd.append("--no-auc")
            sh(cmd, log)
            for line in open(peer_jsonl):
                d = json.loads(line)
                peer_vals[d["model"]] = d
        cairn_dir = os.path.join(odir, "cairn")
        cmd = [args.cairn, "eval", "--split-dir", split, "--models", ",".join(c for _, c in pairs),
               "--out", cairn_dir, "--lists", "--bootstrap", "200"]
        if args.no_auc:
            cmd.append("--no-auc")
        table, _ = sh(cmd, log)
        open(os.path.join(odir, "cairn-table.txt"), "w").write(table)
        report = json.load(open(os.path.join(cairn_dir, "report.json")))
        for peer, cairn in pairs:
            cv = cairn_values(report, cairn)
            pv = peer_vals.get(peer)
            source = "run_peers.py"
            if proto == "explicit-ml100k" and peer == "pop":
                # run_peers.py has no popularity for explicit folds: use its functions per fold.
                per = []
                for fold in meta["folds"]:
                    st = R.known_user_stage("test", os.path.join(split, fold), "train.csv", "test.csv")
                    m = R.Popularity()
                    m.fit(st)
                    r, _ = R.evaluate(m, st, auc=not args.no_auc)
                    per.append(r)
                    if cv is not None:
                        fold_vals = cairn_fold_values(report, fold, cairn)
                        chk = list_check(R, M, st, os.path.join(cairn_dir, "lists", f"{fold}__{cairn}.csv"), fold_vals)
                        checks.append(dict(split=name, stage=fold, model=cairn, **chk))
                pv = {k: float(np.mean([p[k] for p in per])) for k in per[0]}
                source = "run_peers.py functions, mean over folds"
            elif peer == "pop" and proto != "explicit-ml100k" and cv is not None:
                st = R.build_stages(split, proto)["test"]
                chk = list_check(R, M, st, os.path.join(cairn_dir, "lists", f"test__{cairn}.csv"), cv)
                checks.append(dict(split=name, stage="test", model=cairn, **chk))
            if cv is None or pv is None:
                rows.append(dict(split=name, protocol=proto, peer=peer, cairn=cairn, missing=True))
                continue
            cols = RATING_COLS if peer in RATING_PEERS else RANK_COLS
            row = dict(split=name, protocol=proto, peer=peer, cairn=cairn, source=source)
            for c in cols + ["fit_s"]:
                if c in pv and c in cv:
                    row[c] = (pv[c], cv[c])
            rows.append(row)
    with open(os.path.join(args.out, "compare.jsonl"), "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
        for c in checks:
            fh.write(json.dumps(dict(kind="list-check", **c)) + "\n")
    md = render(rows, checks)
    open(os.path.join(args.out, "compare.md"), "w").write(md)
    print(md)


def cairn_fold_values(report, fold, model):
    for st in report["stages"]:
        if st["name"] == fold:
            for m in st["models"]:
                if m["model"] == model:
                    v = {k: s["mean"] for k, s in m["metrics"].items()}
                    v.update(m["aggregates"])
                    return v
    return {}


def render(rows, checks):
    out = []
    for r in rows:
        if r.get("missing"):
            out.append(f"\n**{r['split']}**: no result for {r['peer']} / {r['cairn']}\n")
            continue
        cols = [c for c in r if c not in ("split", "protocol", "peer", "cairn", "source")]
        out.append(f"\n**{r['split']}** ({r['protocol']}): peer `{r['peer']}` ({r['source']}) vs Cairn `{r['cairn']}`\n")
        out.append("| | " + " | ".join(cols) + " |")
        out.append("|---|" + "---|" * len(cols))
        out.append("| peer | " + " | ".join(f"{r[c][0]:.6f}" for c in cols) + " |")
        out.append("| Cairn | " + " | ".join(f"{r[c][1]:.6f}" for c in cols) + " |")
        out.append("| Cairn / peer | " + " | ".join(
            (f"{r[c][1] / r[c][0]:.4f}" if r[c][0] else "–") for c in cols) + " |")
    if checks:
        out.append("\nRanked-list checks (Cairn's lists scored by metrics.topk_metrics; score sequences against "
                   "the harness's own popularity lists):\n")
        out.append("| split | stage | model | max abs diff, metrics.py on Cairn lists vs Cairn | score sequences identical | users with identical lists |")
        out.append("|---|---|---|---|---|---|")
        for c in checks:
            out.append(f"| {c['split']} | {c['stage']} | {c['model']} | {c['metrics_py_on_cairn_lists_max_abs_diff']:.2e} | "
                       f"{'yes' if c['score_sequences_identical'] else 'NO'} | {c['users_with_identical_lists']} / {c['users']} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
