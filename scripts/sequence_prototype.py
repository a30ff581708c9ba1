#!/usr/bin/env python3
"""Numpy prototype used to choose the sequence-aware model before writing it in Rust
(docs/bench/sequence.md, "Which model"): item-to-next-item transitions against sequential session
kNN (V-SKNN-like: the newest events, position-decayed, matched against other users' histories) and
item-kNN, on a leave-last-out protocol (each user's newest event by timestamp, ties in file order,
is the test item), HitRate@10 and NDCG@10 over the full catalogue, seen items excluded, ties to the
lower item index. It is not Cairn's implementation and its numbers are not the benchmark; the Rust
model is measured with scripts/sequence-bench.sh.

    python3 scripts/sequence_prototype.py ../shared/data/ml-latest-small/ratings.csv
    python3 scripts/sequence_prototype.py ml1m-users-1-2999.csv   # user,item,rating,ts

Needs numpy. Dense matrices: fine for these two logs (<= 10k items), not for large ones.
"""
import collections
import csv
import math
import sys

import numpy as np


def load(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = ("userId", "movieId", "timestamp") if "userId" in reader.fieldnames else ("user", "item", "ts")
        return [(r[cols[0]], r[cols[1]], int(r[cols[2]])) for r in reader]


def main(path):
    rows = load(path)
    by_user = collections.defaultdict(list)
    for n, (u, i, t) in enumerate(rows):
        by_user[u].append((t, n, i))
    items = sorted({i for _, i, _ in rows})
    index = {i: k for k, i in enumerate(items)}
    n_items = len(items)
    train, test = {}, {}
    for u, events in by_user.items():
        events.sort()
        seq = [index[i] for _, _, i in events]
        train[u], test[u] = seq[:-1], seq[-1]
    train_items = {i for s in train.values() for i in s}
    users = [u for u in train if test[u] in train_items]
    user_list = list(train)
    row_of = {u: r for r, u in enumerate(user_list)}
    m = np.zeros((len(user_list), n_items), dtype=np.float32)
    for r, u in enumerate(user_list):
        m[r, train[u]] = 1
    count = m.sum(0)
    lens = m.sum(1)

    def top_rows(s, k):
        out = np.zeros_like(s)
        for i in range(s.shape[0]):
            keep = np.argpartition(-s[i], k)[:k]
            out[i, keep] = s[i, keep]
        return out

    gram = m.T @ m
    np.fill_diagonal(gram, 0)
    norm = np.sqrt(count)
    knn = top_rows(gram / (np.outer(norm, norm) + 10), 100)

    def transition(gap=3, decay=0.5, back=0.0, alpha=0.5, shrink=10.0):
        c = np.zeros((n_items, n_items), dtype=np.float32)
        for s in train.values():
            for p, i in enumerate(s):
                w = 1.0
                for j in s[p + 1 : p + 1 + gap]:
                    c[i, j] += w
                    c[j, i] += back * w
                    w *= decay
        return top_rows(c / (np.outer(count**alpha, count ** (1 - alpha)) + shrink), 100)

    def evaluate(score):
        hits = ndcg = 0.0
        for u in users:
            s = score(u).astype(np.float64)
            s[train[u]] = -np.inf
            t = test[u]
            rank = (s > s[t]).sum() + ((s == s[t]) & (np.arange(n_items) < t)).sum()
            if rank < 10:
                hits += 1
                ndcg += 1 / math.log2(rank + 2)
        return hits / len(users), ndcg / len(users)

    def newest(table, last, recency):
        def score(u):
            h = train[u][::-1][:last]
            w = recency ** np.arange(len(h))
            return (table[h] * w[:, None]).sum(0)

        return score

    def sknn(last=10, recency=0.8, k=100, norm_exp=0.5):
        def score(u):
            h = train[u][::-1][:last]
            q = np.zeros(n_items, dtype=np.float32)
            q[h] = recency ** np.arange(len(h))
            sims = (m @ q) / np.maximum(lens, 1) ** norm_exp
            sims[row_of[u]] = 0
            top = np.argpartition(-sims, k)[:k]
            return sims[top] @ m[top]

        return score

    print(f"{path}: {len(users)} users, {n_items} items; HitRate@10, NDCG@10")
    runs = [
        ("item-kNN, whole history", lambda u: knn[train[u]].sum(0)),
        ("item-kNN, newest 5 (recency 0.7)", newest(knn, 5, 0.7)),
        ("sknn newest 10 (0.8), k 100", sknn()),
        ("sknn newest 5 (0.7), k 100", sknn(last=5, recency=0.7)),
        ("sknn newest 10 (0.8), k 100, 1/len", sknn(norm_exp=1.0)),
        ("transition gap 3 decay 0.5 alpha 0.5, newest 5 (0.7)", newest(transition(), 5, 0.7)),
        ("transition gap 3 decay 0.5 alpha 1, newest 5 (0.7)", newest(transition(alpha=1.0), 5, 0.7)),
        ("transition gap 5 decay 0.7 alpha 1, newest 5 (0.7)", newest(transition(gap=5, decay=0.7, alpha=1.0), 5, 0.7)),
    ]
    for name, score in runs:
        hr, nd = evaluate(score)
        print(f"| {name} | {hr:.4f} | {nd:.4f} |")


if __name__ == "__main__":
    main(sys.argv[1])
