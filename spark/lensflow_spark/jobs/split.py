"""Job `split`: writes the folds once, as Parquet, for every grid point and the evaluation to reuse.

Protocols (`protocol`, the contract's SplitProtocol):
- `random` / `time`: a seeded random holdout, or each user's latest ratings, is the evaluation
  fold; the grid search cross-validates on `cvFolds` seeded folds of the rest.
- `kfold`: k seeded folds of everything, for both the grid search and the evaluation.
- `official`: ml-100k's u1..u5 base/test files from the staged raw folder, for both.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from .. import schemas, tables
from ..splits import Fold, k_fold, official_folds, random_holdout, time_holdout, write_folds


def _official(spark: SparkSession, raw: str) -> list[Fold]:
    def read(name: str):
        return spark.read.schema(schemas.ML100K_RATINGS).option("sep", "\t").csv(f"{raw.rstrip('/')}/{name}")

    return official_folds([(read(f"u{i}.base"), read(f"u{i}.test")) for i in range(1, 6)])


def plan(spark: SparkSession, job_input: dict[str, Any]) -> tuple[list[Fold], list[Fold] | None]:
    """The CV folds, and the evaluation folds when they differ from them."""
    protocol: dict[str, Any] = job_input["protocol"]
    kind = protocol["kind"]
    if kind == "official":
        return _official(spark, job_input["raw"]), None
    ratings = tables.read_parquet(spark, job_input["ratings"])
    if kind == "kfold":
        return k_fold(ratings, protocol["k"], protocol["seed"]), None
    if kind == "random":
        holdout = random_holdout(ratings, protocol["testFraction"], protocol["seed"])
    elif kind == "time":
        holdout = time_holdout(ratings, fraction=protocol["testFraction"])
    else:
        raise ValueError(f"unknown split protocol {kind!r}: use random, time, kfold or official")
    train = holdout.train.cache()
    return k_fold(train, protocol["cvFolds"], protocol["seed"]), [Fold(0, train, holdout.test)]


def _counted(df: DataFrame) -> tuple[DataFrame, Observation]:
    """`df` counting its rows as an action runs it: the write counts them, nothing reads them back."""
    seen = Observation()
    return df.observe(seen, F.count(F.lit(1)).alias("n")), seen


def _uris(folds: list[Fold], uri: str) -> list[dict[str, Any]]:
    """Writes the folds and describes them, with the row counts of the write itself."""
    counted = [(f.fold_id, _counted(f.train), _counted(f.test)) for f in folds]
    write_folds([Fold(i, train, test) for i, (train, _), (test, _) in counted], uri)
    return [
        {
            "fold": i,
            "train": f"{uri}/fold={i}/train",
            "test": f"{uri}/fold={i}/test",
            "nTrain": n_train.get["n"],
            "nTest": n_test.get["n"],
        }
        for i, (_, n_train), (_, n_test) in counted
    ]


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    cv, evaluation = plan(spark, job_input)
    out = job_input["output"].rstrip("/")
    cv_uris = _uris(cv, f"{out}/cv")
    eval_uris = cv_uris if evaluation is None else _uris(evaluation, f"{out}/evaluation")
    return {"job": "split", "protocol": job_input["protocol"], "cv": cv_uris, "evaluation": eval_uris}
