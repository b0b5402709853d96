"""Job `evaluate`: ALS at the chosen point and the three baselines on the evaluation folds.

Per fold each model is fitted on train and judged on the held-out test ratings: rmse and mae of its
predictions, and top-k lists (already-rated movies excluded) for precision@k, recall@k, NDCG@k,
MAP@k and catalogue coverage. The result holds the mean over folds of each metric.
"""

from __future__ import annotations

import statistics
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from .. import columns as C
from .. import tables
from ..als import movie_popularity, recommend_for_users, train_final
from ..baselines import GlobalMean, MostPopular, UserItemBias
from ..metrics import catalogue_coverage, ranking_metrics, rating_metrics
from . import runtime

MODELS = ("als", "global_mean", "user_item_bias", "most_popular")
METRICS = ("rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "catalogue_coverage")


def _judge(predictions: DataFrame, recs: DataFrame, test: DataFrame, catalogue: DataFrame, ranking) -> dict:
    k, threshold = ranking["k"], ranking["relevanceThreshold"]
    return {
        **rating_metrics(predictions),
        **ranking_metrics(recs, test, k, threshold=threshold),
        "catalogue_coverage": catalogue_coverage(recs, catalogue, k),
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    config, als_rt = runtime.als_config(job_input["point"]), runtime.als_runtime(job_input)
    ranking = job_input["ranking"]
    catalogue = tables.read_parquet(spark, job_input["movies"]).select(C.MOVIE_ID).cache()
    k = ranking["k"]
    per_fold: dict[str, list[dict]] = {m: [] for m in MODELS}
    for fold in runtime.read_fold_list(spark, job_input["folds"]):
        train, test = fold.train.cache(), fold.test.cache()
        users = test.select(C.USER_ID).distinct()
        als = train_final(spark, train, config, als_rt)
        als_recs = recommend_for_users(als, users, k, train, movie_popularity(train)).cache()
        per_fold["als"].append(_judge(als.transform(test), als_recs, test, catalogue, ranking))
        for name, estimator in (
            ("global_mean", GlobalMean()),
            ("user_item_bias", UserItemBias()),
            ("most_popular", MostPopular()),
        ):
            model = estimator.fit(train)
            recs = model.recommend_for_users(users, k, exclude=train).cache()
            per_fold[name].append(_judge(model.transform(test), recs, test, catalogue, ranking))
            recs.unpersist()
        als_recs.unpersist()
        train.unpersist()
        test.unpersist()
    models = {m: {metric: _mean([f.get(metric) for f in per_fold[m]]) for metric in METRICS} for m in MODELS}
    return {
        "job": "evaluate",
        "point": runtime.als_point(config),
        "ranking": ranking,
        "folds": len(job_input["folds"]),
        "models": models,
    }
