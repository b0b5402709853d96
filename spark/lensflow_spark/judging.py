"""Every model's metrics on one fold from one Spark action: what `evaluate` reports per model.

Judged one at a time, each model cost five actions (rating fit, ranking metrics, catalogue and
distributional coverage, novelty), and on small folds a job's time is mostly such fixed per-action
cost. Here the models' lists are stacked under a `model` key and every metric is grouped by it
(`metrics.py` gives each formula once, grouped or not), so one query judges them all and the
numbers are the ones the single-model functions give.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from . import columns as C
from . import metrics as M

MODEL = "model"


def _stacked(frames: dict[str, DataFrame], *columns: str) -> DataFrame:
    tagged = [df.select(F.lit(name).alias(MODEL), *columns) for name, df in frames.items()]
    return reduce(DataFrame.unionByName, tagged)


def judge_models(
    spark: SparkSession,
    lists: dict[str, DataFrame],
    predictions: dict[str, DataFrame],
    *,
    held_out: DataFrame,
    relevant: DataFrame,
    catalogue: DataFrame,
    information: DataFrame,
    k: int,
) -> dict[str, dict[str, float | None]]:
    """Per model of `lists` (its top-k lists: user_id, movie_id, rank): precision, recall, NDCG and
    MAP at k against `relevant` (`metrics.relevant_sets` of `held_out`), catalogue coverage of
    `catalogue`, distributional coverage and novelty from `information` (`metrics.self_information`
    of the training part); and for the models in `predictions` (rating, prediction rows) rmse, mae,
    R² and explained variance. One action."""
    if not lists:
        return {}
    unknown = set(predictions) - set(lists)
    if unknown:
        raise ValueError(f"predictions for models without lists: {sorted(unknown)}")
    models = spark.createDataFrame([(name,) for name in lists], f"{MODEL} string")
    stacked = _stacked(lists, C.USER_ID, C.MOVIE_ID, M.RANK)
    parts = [
        M.ranking_means(stacked, held_out, k, relevant=relevant, groups=models),
        M.catalogue_counts(stacked, catalogue, k, groups=models),
        M.slot_entropy(stacked, k, groups=models),
        M.mean_novelty(stacked, information, k, groups=models),
    ]
    if predictions:
        rated = _stacked(predictions, C.RATING, M.PREDICTION)
        parts.append(M.rating_moments(rated, keys=(MODEL,)))
    table = reduce(lambda left, part: left.join(part, MODEL, "left"), parts, models)
    out: dict[str, dict[str, float | None]] = {}
    for row in table.collect():
        metrics = {name: M.float_or_none(row[name]) for name in M.RANKING_METRICS}
        metrics["catalogue_coverage"] = M.coverage_ratio(row)
        metrics["distributional_coverage"] = M.float_or_none(row["distributional_coverage"])
        metrics["novelty"] = M.float_or_none(row["novelty"])
        if row[MODEL] in predictions:
            metrics.update(M.rating_fit(row))
        out[row[MODEL]] = metrics
    return out
