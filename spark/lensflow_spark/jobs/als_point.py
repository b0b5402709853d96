"""Job `als_point`: cross-validates ONE ALS hyperparameter point over the CV folds.

This is the unit the workflow's grid search fans out; every point reads the same folds.
"""

from __future__ import annotations

import argparse
from typing import Any

from pyspark.sql import SparkSession

from ..als import evaluate_grid_point
from . import runtime


def build_parser() -> argparse.ArgumentParser:
    p = runtime.parser("als_point", __doc__)
    p.add_argument(
        "--folds", required=True, type=runtime.json_arg, help="the split result's `cv` folds (JSON)"
    )
    p.add_argument("--point", required=True, type=runtime.json_arg, help="AlsPoint JSON")
    runtime.add_model_options(p)
    return p


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    config = runtime.als_config(args.point)
    scores = evaluate_grid_point(
        spark, runtime.read_fold_list(spark, args.folds), config, runtime.als_runtime(args)
    )
    doc = {
        "job": "als_point",
        "point": runtime.als_point(config),
        "folds": [
            {
                "fold": f["fold"],
                "rmse": f["rmse"],
                "mae": f["mae"],
                "nTest": f["n_test"],
                "nPredicted": f["n_predicted"],
            }
            for f in scores["folds"]
        ],
        "mean": scores["mean"],
        "std": scores["std"],
    }
    return runtime.publish(spark, "als_point", args.result, doc)


def main(argv: list[str] | None = None) -> None:
    runtime.run_job("als_point", build_parser, run, argv)
