"""Job `als_point`: cross-validates ONE ALS hyperparameter point over the CV folds.

This is the unit the workflow's grid search fans out; every point reads the same folds.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from ..als import evaluate_grid_point
from . import runtime


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    config = runtime.als_config(job_input["point"])
    scores = evaluate_grid_point(
        spark, runtime.read_fold_list(spark, job_input["folds"]), config, runtime.als_runtime(job_input)
    )
    return {
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
