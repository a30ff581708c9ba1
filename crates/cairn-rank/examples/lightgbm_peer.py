"""Times LightGBM's lambdarank on the rows that rank_bench dumped, for a same-run comparison.

python lightgbm_peer.py DUMP_DIR [trees]   (needs `pip install lightgbm numpy`)
Settings mirror RankerConfig::default(): 31 leaves, lr 0.1, min_data_in_leaf 20, 255 bins, NDCG@10
truncation, 2 threads. NDCG@10 is computed with the same formula as cairn_rank::mean_ndcg
(gain 2^l - 1, groups without positives skipped, ties broken with the lower label first).
"""
import sys
import time

import lightgbm as lgb
import numpy as np


def load(d, name):
    y = np.fromfile(f"{d}/{name}_y.f32", dtype="<f4")
    x = np.fromfile(f"{d}/{name}_x.f32", dtype="<f4").reshape(len(y), -1)
    g = np.fromfile(f"{d}/{name}_groups.u32", dtype="<u4").astype(np.int64)
    return x, y, g


def mean_ndcg(scores, labels, groups, k=10):
    total, counted, start = 0.0, 0, 0
    for size in groups:
        s, l = scores[start:start + size], labels[start:start + size]
        start += size
        if not (l > 0).any():
            continue
        order = np.lexsort((l, -s))[:k]
        disc = 1.0 / np.log2(np.arange(2, k + 2))
        dcg = ((2.0 ** l[order] - 1) * disc[:len(order)]).sum()
        ideal = np.sort(l)[::-1][:k]
        idcg = ((2.0 ** ideal - 1) * disc[:len(ideal)]).sum()
        total += dcg / idcg
        counted += 1
    return total / max(counted, 1)


def main():
    d = sys.argv[1]
    trees = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    xtr, ytr, gtr = load(d, "train")
    xte, yte, gte = load(d, "test")
    params = dict(objective="lambdarank", num_leaves=31, learning_rate=0.1, min_data_in_leaf=20,
                  min_sum_hessian_in_leaf=1e-3, lambda_l2=0.0, max_bin=255,
                  lambdarank_truncation_level=10, eval_at=[10], num_threads=2, verbose=-1,
                  seed=42, deterministic=True, force_col_wise=True)
    t = time.perf_counter()
    train = lgb.Dataset(xtr, ytr, group=gtr, params=params)
    booster = lgb.train(params, train, num_boost_round=trees)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    scores = booster.predict(xte, num_threads=1)
    pred_ns = (time.perf_counter() - t) / len(yte) * 1e9
    print(f"lightgbm {lgb.__version__}: fit {fit_s:.2f} s (Dataset + {trees} trees, 2 threads), "
          f"predict {pred_ns:.0f} ns/row (one call, one thread), "
          f"test NDCG@10 {mean_ndcg(scores, yte, gte):.4f}")


if __name__ == "__main__":
    main()
