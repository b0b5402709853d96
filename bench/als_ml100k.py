"""Benchmark: ALS (grid-searched) vs the three baselines on ml-100k's official u1..u5 folds.

    cd spark && PYTHONPATH=. ../.lensflow/venv/bin/python ../bench/als_ml100k.py \
        --data ../../shared/data/movielens/ml-100k --out ../bench/results

Grid search: every point is cross-validated on the five folds (mean RMSE); the best point is then
evaluated next to the baselines on the same folds: mean RMSE, MAE and NDCG@10 (relevance: held-out
rating >= 4, already-rated movies excluded). Writes `ml100k-als-vs-baselines.json` and `.md`.
A benchmark, not a test: it asserts nothing and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from pyspark.sql import SparkSession

from lensflow_spark import columns as C
from lensflow_spark import schemas
from lensflow_spark.als import (
    ALSConfig,
    ALSRuntime,
    evaluate_grid_point,
    movie_popularity,
    recommend_for_users,
    train_final,
)
from lensflow_spark.baselines import GlobalMean, MostPopular, UserItemBias
from lensflow_spark.grid import best_row
from lensflow_spark.metrics import ranking_metrics, rating_metrics
from lensflow_spark.session import local_session
from lensflow_spark.splits import official_folds

GRID = {"rank": [8, 12, 16], "reg_param": [0.05, 0.1, 0.2], "max_iter": [15]}
K = 10


def folds(spark: SparkSession, data: Path):
    def read(name):
        return spark.read.schema(schemas.ML100K_RATINGS).option("sep", "\t").csv(str(data / name))

    return [
        type(f)(f.fold_id, f.train.cache(), f.test.cache())
        for f in official_folds([(read(f"u{i}.base"), read(f"u{i}.test")) for i in range(1, 6)])
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    t0 = time.time()
    spark = local_session("lensflow-bench", cores=2)
    spark.sparkContext.setLogLevel("ERROR")
    fs = folds(spark, args.data)
    runtime = ALSRuntime(checkpoint_dir=tempfile.mkdtemp(prefix="lensflow-bench-"), seed=42)

    grid = []
    for rank in GRID["rank"]:
        for reg in GRID["reg_param"]:
            for iters in GRID["max_iter"]:
                config = ALSConfig(rank=rank, reg_param=reg, max_iter=iters)
                scores = evaluate_grid_point(spark, fs, config, runtime)
                grid.append(
                    {
                        **config.to_dict(),
                        "rmse": scores["mean"]["rmse"],
                        "mae": scores["mean"]["mae"],
                    }
                )
                print(json.dumps(grid[-1]), flush=True)  # noqa: T201 - progress of a CLI benchmark
    best = best_row(grid)  # the pipeline's own rule (contracts' best-point-rule.json)
    best_config = ALSConfig(rank=best["rank"], reg_param=best["reg_param"], max_iter=best["max_iter"])

    per_model: dict[str, list[dict]] = {
        m: [] for m in ("als", "global_mean", "user_item_bias", "most_popular")
    }
    for fold in fs:
        users = fold.test.select(C.USER_ID).distinct()
        als = train_final(spark, fold.train, best_config, runtime)
        recs = recommend_for_users(als, users, K, fold.train, movie_popularity(fold.train))
        per_model["als"].append(
            {
                **rating_metrics(als.transform(fold.test)),
                **ranking_metrics(recs, fold.test, K),
            }
        )
        for name, est in (
            ("global_mean", GlobalMean()),
            ("user_item_bias", UserItemBias()),
            ("most_popular", MostPopular()),
        ):
            model = est.fit(fold.train)
            recs = model.recommend_for_users(users, K, exclude=fold.train)
            per_model[name].append(
                {
                    **rating_metrics(model.transform(fold.test)),
                    **ranking_metrics(recs, fold.test, K),
                }
            )

    def mean(model, metric):
        values = [f[metric] for f in per_model[model] if f[metric] is not None]
        return statistics.fmean(values) if values else None

    table = {m: {k: mean(m, k) for k in ("rmse", "mae", "ndcg_at_k")} for m in per_model}
    result = {
        "benchmark": "ml-100k official folds u1..u5, mean over folds",
        "grid": grid,
        "best": best,
        "k": K,
        "models": table,
        "seconds": round(time.time() - t0, 1),
        "machine": f"{platform.machine()}, {platform.python_version()}, local[2]",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ml100k-als-vs-baselines.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# ALS vs baselines on ml-100k (official folds u1..u5, mean over folds)",
        "",
        f"Best grid point: rank {best['rank']}, regParam {best['reg_param']}, maxIter {best['max_iter']} "
        f"(CV RMSE {best['rmse']:.4f}); {len(grid)} points; {result['seconds']} s on {result['machine']}.",
        "",
        "| model | RMSE | MAE | NDCG@10 |",
        "|---|---:|---:|---:|",
        *(f"| {m} | {v['rmse']:.4f} | {v['mae']:.4f} | {v['ndcg_at_k']:.4f} |" for m, v in table.items()),
        "",
    ]
    (args.out / "ml100k-als-vs-baselines.md").write_text("\n".join(lines))
    print("\n".join(lines))  # noqa: T201
    spark.stop()


if __name__ == "__main__":
    main()
