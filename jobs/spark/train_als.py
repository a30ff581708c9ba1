#!/usr/bin/env python3
"""Train implicit ALS on Apache Spark (MLlib) from Cairn's training snapshot, for `cairn import factors`.

Input: the Parquet file (or folder of Parquet files) that

    cairn export interactions --format parquet --out interactions.parquet

writes: one row per event, columns `user_id` (string), `item_id` (string), `strength` (float, the
event type's signed weight) and `timestamp`. With `--csv`, a CSV file with a header and the columns
`user,item` (the peer harness's split files; every row has strength 1) or `user_id,item_id[,strength]`.

Output, in the folder given by --out (see docs/SPARK.md):

    user_factors/   Parquet: id STRING (the user id as Cairn knows it), features ARRAY<FLOAT> (rank values)
    item_factors/   Parquet: id STRING (the item id), features ARRAY<FLOAT>
    manifest.json   format, params, counts, training seconds, Spark version

Events of one (user, item) pair are summed first. With --binarize (the default, as Cairn's own ALS
does) a pair whose summed strength is positive counts as 1 and the others are dropped; with
--no-binarize the summed strength is the rating, and MLlib gives a pair of negative strength
preference 0 with confidence alpha * |strength|.

Run it with the pyspark package (pip install pyspark; Java 17 or later) in local mode:

    python3 jobs/spark/train_als.py --input interactions.parquet --out factors \
        --rank 64 --reg-param 0.1 --alpha 10 --iterations 15

or on a cluster with spark-submit (then --master is taken from spark-submit).
"""

import argparse
import datetime
import json
import os
import sys
import time


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="Parquet file or folder from `cairn export interactions`")
    ap.add_argument("--csv", action="store_true", help="the input is a CSV file (user,item or user_id,item_id[,strength])")
    ap.add_argument("--out", required=True, help="output folder (replaced if it exists)")
    ap.add_argument("--rank", type=int, default=64, help="factors per user and item")
    ap.add_argument("--reg-param", type=float, default=0.1,
                    help="MLlib's regParam (MLlib scales it by each user's or item's number of interactions)")
    ap.add_argument("--alpha", type=float, default=10.0, help="confidence of a pair: 1 + alpha * strength")
    ap.add_argument("--iterations", type=int, default=15, help="MLlib's maxIter")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--binarize", dest="binarize", action="store_true", default=True,
                    help="a pair with positive summed strength counts 1, others are dropped (default)")
    ap.add_argument("--no-binarize", dest="binarize", action="store_false")
    ap.add_argument("--blocks", type=int, default=0, help="MLlib's numUserBlocks and numItemBlocks (0: MLlib's default, 10)")
    ap.add_argument("--checkpoint-dir", default=None,
                    help="Spark checkpoint folder: MLlib then cuts the factors' lineage every 10 iterations (long runs on a cluster)")
    ap.add_argument("--master", default=None, help="Spark master when not run by spark-submit (default local[*])")
    ap.add_argument("--driver-memory", default="2g", help="spark.driver.memory in local mode")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.rank < 1 or args.iterations < 1 or args.reg_param < 0 or args.alpha < 0:
        sys.exit("train_als.py: --rank and --iterations must be at least 1, --reg-param and --alpha not negative")

    started = time.time()
    from pyspark.sql import SparkSession, functions as F, types as T
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS
    import pyspark

    builder = SparkSession.builder.appName("cairn-train-als")
    if args.master or not os.environ.get("SPARK_ENV_LOADED"):
        builder = builder.master(args.master or "local[*]").config("spark.driver.memory", args.driver_memory)
    spark = (
        builder.config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    if args.checkpoint_dir:
        spark.sparkContext.setCheckpointDir(args.checkpoint_dir)

    if args.csv:
        raw = spark.read.option("header", True).csv(args.input)
        cols = set(raw.columns)
        if {"user_id", "item_id"} <= cols:
            user_col, item_col = "user_id", "item_id"
        elif {"user", "item"} <= cols:
            user_col, item_col = "user", "item"
        else:
            sys.exit(f"train_als.py: {args.input}: a CSV needs the columns user,item or user_id,item_id; it has {sorted(cols)}")
        strength = F.col("strength").cast("float") if "strength" in cols else F.lit(1.0).cast("float")
        events = raw.select(F.col(user_col).alias("user_id"), F.col(item_col).alias("item_id"), strength.alias("strength"))
    else:
        events = spark.read.parquet(args.input)
        missing = {"user_id", "item_id", "strength"} - set(events.columns)
        if missing:
            sys.exit(f"train_als.py: {args.input}: no column {', '.join(sorted(missing))}; "
                     "write it with `cairn export interactions --format parquet`")
        events = events.select("user_id", "item_id", F.col("strength").cast("float").alias("strength"))

    n_events = events.count()
    pairs = events.groupBy("user_id", "item_id").agg(F.sum("strength").alias("strength"))
    if args.binarize:
        pairs = pairs.where(F.col("strength") > 0).withColumn("strength", F.lit(1.0).cast("float"))

    # Dense integer ids for MLlib, in a fixed (alphabetical) order so reruns agree.
    users = StringIndexer(inputCol="user_id", outputCol="u", stringOrderType="alphabetAsc").fit(pairs)
    items = StringIndexer(inputCol="item_id", outputCol="i", stringOrderType="alphabetAsc").fit(pairs)
    ratings = (
        items.transform(users.transform(pairs))
        .select(F.col("u").cast("int").alias("u"), F.col("i").cast("int").alias("i"), "strength")
        .cache()
    )
    n_pairs = ratings.count()
    n_users, n_items = len(users.labels), len(items.labels)
    if n_pairs == 0:
        sys.exit(f"train_als.py: {args.input}: no interaction with a positive strength to train on")

    als = ALS(
        rank=args.rank,
        maxIter=args.iterations,
        regParam=args.reg_param,
        alpha=args.alpha,
        implicitPrefs=True,
        userCol="u",
        itemCol="i",
        ratingCol="strength",
        seed=args.seed,
        nonnegative=False,
        coldStartStrategy="drop",
    )
    if args.blocks > 0:
        als = als.setNumUserBlocks(args.blocks).setNumItemBlocks(args.blocks)
    fit_started = time.time()
    model = als.fit(ratings)  # MLlib materialises both factor tables before it returns
    training_seconds = time.time() - fit_started

    def write(factors, labels, name):
        ids = spark.createDataFrame(list(enumerate(labels)), T.StructType([
            T.StructField("idx", T.IntegerType(), False), T.StructField("id", T.StringType(), False)]))
        out = factors.join(ids, factors["id"] == ids["idx"]).select(
            ids["id"].alias("id"), F.col("features").cast("array<float>").alias("features"))
        out.write.mode("overwrite").parquet(os.path.join(args.out, name))

    write(model.userFactors, users.labels, "user_factors")
    write(model.itemFactors, items.labels, "item_factors")

    manifest = {
        "format": "cairn-factors",
        "format_version": 1,
        "algorithm": "spark-mllib-als-implicit",
        "params": {
            "rank": args.rank,
            "reg_param": args.reg_param,
            "alpha": args.alpha,
            "iterations": args.iterations,
            "seed": args.seed,
            "binarize": args.binarize,
        },
        "input": os.path.abspath(args.input),
        "events": n_events,
        "users": n_users,
        "items": n_items,
        "interactions": n_pairs,
        "mean_user_interactions": n_pairs / n_users,
        "training_seconds": round(training_seconds, 3),
        "job_seconds": round(time.time() - started, 3),
        "spark_version": pyspark.__version__,
        "master": spark.sparkContext.master,
        "default_parallelism": spark.sparkContext.defaultParallelism,
        "created_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    spark.stop()
    print(json.dumps({k: manifest[k] for k in ("users", "items", "interactions", "training_seconds", "spark_version")}))


if __name__ == "__main__":
    main()
