"""Benchmark: what `recommend` serves, scored beside most_popular on ml-latest-small's default split.

    cd spark && PYTHONPATH=. ../.lensflow/venv/bin/python ../bench/serving.py \
        --data ../../shared/data/movielens --out ../bench/results [--families implicit_als,torch_ease]

The served model is built by the job's own `served_estimator` (family, point, the minimum-support
rule at the contract's default) and its lists come from the same `recommend_for_users` the job
writes, so the ratio below is the served lists' NDCG@10 over most_popular's in the same run (issue
12: >= 1.5). Split: random 0.2, seed 42; relevance: rating >= 4 (`protocols.THRESHOLD4`). Also
checks the served lists: no rated movie, every score inside the family's documented range.
Writes `serving.json` and `serving.md`. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F

from lensflow_spark import columns as C
from lensflow_spark.families import FitRuntime, family
from lensflow_spark.jobs.recommend import DEFAULT_MIN_SUPPORT, SCORE_RANGES, served_estimator
from lensflow_spark.protocols import THRESHOLD4, evaluate_model
from lensflow_spark.readers import read_dataset
from lensflow_spark.session import local_session
from lensflow_spark.splits import random_holdout

POINTS = {  # the points bench/models.md measured (implicit_als is the pipeline's default)
    "implicit_als": {"rank": 32, "reg_param": 0.1, "max_iter": 10, "alpha": 1.0},
    "torch_ease": {"l2": 500.0, "min_support": 3},
}


def _served_checks(model, train, test) -> dict:
    lists = model.recommend_for_users(test.select(C.USER_ID).distinct(), THRESHOLD4.k, exclude=train)
    lists = lists.cache()
    row = lists.agg(F.min(C.SCORE).alias("lo"), F.max(C.SCORE).alias("hi")).first()
    rated = lists.join(train, [C.USER_ID, C.MOVIE_ID]).count()
    lists.unpersist()
    return {"min_score": row["lo"], "max_score": row["hi"], "rated_movies_served": rated}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--families", default=",".join(POINTS))
    args = p.parse_args()
    started = time.time()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = local_session("lensflow-bench-serving", cores=2)
    spark.sparkContext.setLogLevel("ERROR")
    work = tempfile.mkdtemp(prefix="lensflow-bench-serving-")
    runtime = FitRuntime(f"{work}/checkpoints", work, (0.5, 5.0), num_blocks=4)
    raw = read_dataset(spark, "ml-latest-small", str(args.data / "ml-latest-small"))
    ratings = raw.ratings.where(F.col("corrupt_record").isNull()).select(C.USER_ID, C.MOVIE_ID, C.RATING)
    split = random_holdout(ratings, 0.2, 42)
    train, test = split.train.cache(), split.test.cache()

    baseline = family("most_popular").estimator({}, runtime).fit(train)
    popular = evaluate_model(baseline, train, test, THRESHOLD4)["ndcg_at_k"]
    result: dict = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}, local[2]",
        "min_support": DEFAULT_MIN_SUPPORT,
        "most_popular_ndcg_at_10": popular,
        "served": {},
    }
    for name in [f for f in args.families.split(",") if f]:
        fit_started = time.time()
        estimator, point = served_estimator(
            {"family": name, "point": POINTS[name]}, DEFAULT_MIN_SUPPORT, runtime
        )
        model = estimator.fit(train)
        fit_seconds = time.time() - fit_started
        ndcg = evaluate_model(model, train, test, THRESHOLD4)["ndcg_at_k"]
        result["served"][name] = {
            "point": point,
            "ndcg_at_10": ndcg,
            "ratio_to_most_popular": ndcg / popular,
            "score_range": list(SCORE_RANGES[name]),
            **_served_checks(model, train, test),
            "fit_seconds": round(fit_seconds, 1),
        }
        model.unpersist()
        print(name, result["served"][name], flush=True)  # noqa: T201
    result["seconds"] = round(time.time() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# What `recommend` serves vs most_popular (ml-latest-small, random 0.2 seed 42, relevance >= 4)",
        "",
        f"{result['seconds']} s on {result['machine']}; minimum support {DEFAULT_MIN_SUPPORT} "
        f"(the job's default); most_popular NDCG@10 {popular:.4f} in the same run.",
        "",
        "| served family | point | NDCG@10 | x most_popular | scores (range) | rated movies served | fit s |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for name, v in result["served"].items():
        lines.append(
            f"| {name} | `{json.dumps(v['point'])}` | {v['ndcg_at_10']:.4f} | "
            f"{v['ratio_to_most_popular']:.2f} | "
            f"{v['min_score']:.3f}..{v['max_score']:.3f} ({v['score_range'][0]}..{v['score_range'][1]}) | "
            f"{v['rated_movies_served']} | {v['fit_seconds']} |"
        )
    (args.out / "serving.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))  # noqa: T201
    spark.stop()


if __name__ == "__main__":
    main()
