"""Benchmark: lensflow end to end vs a seed-style single PySpark job, same data, store and grid.

    make up   # the local stack with the warm engine; then, with .lensflow/local.env sourced:
    cd spark && PYTHONPATH=. ../.lensflow/venv/bin/python ../bench/seed_vs_lensflow.py --out ../bench/results

The seed-style job is the project description's code path in one script: CSV with inferSchema read
through s3a from the staged raw files, dropna, Parquet, CrossValidator over ALS (rank {10,20} x
regParam {0.05,0.1,0.2}, maxIter 10, 3 folds, RegressionEvaluator RMSE) on an 80/20 split, test
RMSE, a SparkSQL query and recommendForAllUsers(10), written back to S3. lensflow runs the same grid
and folds (`lensflow run`, split random 0.2 with 3 CV folds, 3 grid points at once, no registry
step: the seed has none). Both run one after the other in this
command; the ratios (lensflow / seed for the whole run, grid stage / CrossValidator) go to
`seed-vs-lensflow.json` and `.md`. A benchmark, not a test: it asserts nothing and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
import uuid
from pathlib import Path

from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.recommendation import ALS
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

from lensflow_spark.session import local_session

REPO = Path(__file__).resolve().parents[1]
RANKS, REGS, MAX_ITER, FOLDS = [10, 20], [0.05, 0.1, 0.2], 10, 3
CONCURRENT = 3
"""Grid points at once on the warm engine (`--max-concurrent`): two waves of three on 2 cores, so
one point's driver-side work (Python, Py4J, scheduling) overlaps another's tasks."""


def seed_job(raw: str, out: str) -> dict[str, float]:
    """The seed's single script; every timer ends on an action, so it times the work itself."""
    t0 = time.perf_counter()
    spark = local_session("seed-style", os.cpu_count() or 2)
    spark.sparkContext.setLogLevel("ERROR")
    ratings = spark.read.csv(f"{raw}/ratings.csv", header=True, inferSchema=True).dropna()
    movies = spark.read.csv(f"{raw}/movies.csv", header=True, inferSchema=True).dropna()
    ratings.write.mode("overwrite").parquet(f"{out}/ratings")
    movies.write.mode("overwrite").parquet(f"{out}/movies")
    ratings = spark.read.parquet(f"{out}/ratings")
    train, test = ratings.randomSplit([0.8, 0.2], seed=42)
    als = ALS(userCol="userId", itemCol="movieId", ratingCol="rating", coldStartStrategy="drop", seed=42)
    grid = ParamGridBuilder().addGrid(als.rank, RANKS).addGrid(als.regParam, REGS).build()
    evaluator = RegressionEvaluator(metricName="rmse", labelCol="rating", predictionCol="prediction")
    cv = CrossValidator(estimator=als.setMaxIter(MAX_ITER), estimatorParamMaps=grid, evaluator=evaluator,
                        numFolds=FOLDS, seed=42)  # fmt: skip
    t_cv = time.perf_counter()
    model = cv.fit(train)
    cv_seconds = time.perf_counter() - t_cv
    rmse = evaluator.evaluate(model.transform(test))
    ratings.createOrReplaceTempView("ratings")
    spark.read.parquet(f"{out}/movies").createOrReplaceTempView("movies")
    spark.sql(
        "SELECT m.title, AVG(r.rating) AS avg, COUNT(*) AS n FROM ratings r JOIN movies m USING (movieId) "
        "GROUP BY m.title HAVING n >= 20 ORDER BY avg DESC LIMIT 10"
    ).collect()
    model.bestModel.recommendForAllUsers(10).write.mode("overwrite").parquet(f"{out}/recs")
    spark.stop()
    return {"total": time.perf_counter() - t0, "cv": cv_seconds, "testRmse": rmse}


def lensflow_run(prefix: str) -> dict[str, float]:
    """`lensflow run` on the stack; wall time of the whole run and the grid stage's own time."""
    grid = {"rank": RANKS, "regParam": REGS, "maxIter": [MAX_ITER]}
    split = {"kind": "random", "testFraction": 0.2, "cvFolds": FOLDS, "seed": 42}
    cmd = ["node", str(REPO / "dist" / "cli" / "main.js"), "run", "--dataset", "ml-latest-small",
           "--grid", json.dumps(grid), "--split", json.dumps(split), "--prefix", prefix,
           "--max-concurrent", str(CONCURRENT), "--no-register", "--json"]  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    total = time.perf_counter() - t0
    result = json.loads(out)
    stages = {s["stage"]: s["seconds"] for s in result["stages"]}
    return {
        "total": total,
        "raw": result["staged"]["rawUri"].replace("s3://", "s3a://", 1),
        "grid": stages["grid"],
        "testRmse": result["test"]["als"]["rmse"],
        "stages": stages,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    bucket = os.environ.get("LENSFLOW_BUCKET", "lensflow")
    prefix = f"bench/seed-vs-lensflow-{uuid.uuid4().hex[:8]}"
    lens = lensflow_run(prefix)  # stages ml-latest-small in the store, where the seed job reads it
    seed = seed_job(lens["raw"].rstrip("/"), f"s3a://{bucket}/{prefix}/seed")
    doc = {
        "dataset": "ml-latest-small",
        "grid": {"rank": RANKS, "regParam": REGS, "maxIter": MAX_ITER, "folds": FOLDS},
        "concurrentPoints": CONCURRENT,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seed": seed,
        "lensflow": lens,
        "ratios": {
            "endToEnd": lens["total"] / seed["total"],
            "gridVsCrossValidator": lens["grid"] / seed["cv"],
        },
        "targets": {"endToEnd": 1.0, "gridVsCrossValidator": 0.5},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "seed-vs-lensflow.json").write_text(json.dumps(doc, indent=2) + "\n")
    r = doc["ratios"]
    (args.out / "seed-vs-lensflow.md").write_text(
        "# lensflow vs a seed-style single PySpark job (ml-latest-small, 6-point grid, 3 folds)\n\n"
        "| | seed-style | lensflow | ratio | target |\n|---|---|---|---|---|\n"
        f"| end to end (s) | {seed['total']:.1f} | {lens['total']:.1f} | {r['endToEnd']:.2f}x | <= 1.0x |\n"
        f"| grid search (s) | {seed['cv']:.1f} (CrossValidator) | {lens['grid']:.1f} | "
        f"{r['gridVsCrossValidator']:.2f}x | <= 0.5x |\n"
        f"| test RMSE | {seed['testRmse']:.4f} | {lens['testRmse']:.4f} | | |\n"
    )
    stages = ", ".join(f"{k} {v:.1f}" for k, v in lens["stages"].items())
    with (args.out / "seed-vs-lensflow.md").open("a") as md:
        md.write(f"\nlensflow stages (s): {stages}\n\nRatios: {json.dumps(r)}\n")


if __name__ == "__main__":
    main()
