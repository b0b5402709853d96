"""Job `evaluate`: ALS at the chosen point, each searched family at its chosen point, and the three
baselines on the evaluation folds.

Per fold each model is fitted on train and judged on the held-out test ratings: a rating model
(ALS, the rating families, global mean, user+item bias) by rmse, mae, R² and explained variance of
its predictions; every model by its top-k lists (already-rated movies excluded): precision@k,
recall@k, NDCG@k, MAP@k, catalogue coverage, distributional coverage and novelty. A ranking family
has no rating metrics (null). Each fold's models are judged together, in one query (`judging.py`).
The result holds the mean over folds of each metric.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from typing import Any

from pyspark.sql import SparkSession

from .. import columns as C
from .. import metrics as M
from .. import tables, topn
from ..als import movie_popularity, recommend_for_users, train_final
from ..baselines import GlobalMean, MostPopular, UserItemBias
from ..contracts import shared_fact
from ..families import RATING, family
from ..judging import judge_models
from . import runtime
from .model_point import fit_runtime

BASELINES = ("global_mean", "user_item_bias", "most_popular")


def metric_names() -> tuple[str, ...]:
    """Every metric the evaluation reports (`models.json`: rating metrics, then ranking metrics)."""
    models = shared_fact("models")
    return (*models["ratingMetrics"], *models["rankingMetrics"])


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    config, als_rt = runtime.als_config(job_input["point"]), runtime.als_runtime(job_input)
    ranking = job_input["ranking"]
    chosen: dict[str, dict[str, Any]] = job_input.get("families") or {}
    catalogue = tables.read_parquet(spark, job_input["movies"]).select(C.MOVIE_ID).cache()
    k = ranking["k"]
    names = ("als", *chosen, *BASELINES)
    per_fold: dict[str, list[dict]] = {m: [] for m in names}
    # Where the job's time goes, summed over folds: the tables every model shares, per model its fit
    # and its lists, and the one query that judges every model's lists and predictions (`metrics`).
    # Each part ends in actions, so each timer forces its work.
    seconds: dict[str, Any] = {
        "shared": 0.0, "fit": defaultdict(float), "lists": defaultdict(float), "metrics": 0.0,
    }  # fmt: skip
    clock = time.monotonic
    for fold in runtime.read_fold_list(spark, job_input["folds"]):
        started = clock()
        train, test = fold.train.cache(), fold.test.cache()
        # What every model's lists and metrics on this fold share, computed once (not per model):
        # the users to list, their rated movies to exclude, each movie's self-information, and each
        # user's relevant held-out movies.
        users = test.select(C.USER_ID).distinct().cache()
        rated = topn.rated_lists(train).cache()
        information = M.self_information(train).cache()
        relevant = M.relevant_sets(test, ranking["relevanceThreshold"]).cache()
        shared = (train, test, users, rated, information, relevant)
        for table in shared:
            table.count()
        seconds["shared"] += clock() - started
        pairs = test.select(C.USER_ID, C.MOVIE_ID, C.RATING)
        fitted: list[Any] = []
        started = clock()
        als = train_final(spark, train, config, als_rt)
        seconds["fit"]["als"] += clock() - started
        started = clock()
        lists = {"als": recommend_for_users(als, users, k, rated, movie_popularity(train)).cache()}
        lists["als"].count()
        seconds["lists"]["als"] += clock() - started
        predictions = {"als": als.transform(pairs)}
        fit = fit_runtime(job_input, train) if chosen else None
        others = [(n, family(n).estimator(point, fit), family(n).kind) for n, point in chosen.items()]
        others += [
            ("global_mean", GlobalMean(), RATING),
            ("user_item_bias", UserItemBias(), RATING),
            ("most_popular", MostPopular(), RATING),
        ]
        for name, estimator, kind in others:
            started = clock()
            model = estimator.fit(train)
            seconds["fit"][name] += clock() - started
            fitted.append(model)
            started = clock()
            lists[name] = model.recommend_for_users(users, k, exclude=rated).cache()
            lists[name].count()
            seconds["lists"][name] += clock() - started
            if kind == RATING:
                predictions[name] = model.transform(pairs)
        started = clock()
        judged = judge_models(
            spark, lists, predictions, held_out=test, relevant=relevant, catalogue=catalogue,
            information=information, k=k,
        )  # fmt: skip
        seconds["metrics"] += clock() - started
        for name in names:
            per_fold[name].append(judged[name])
        for table in (*lists.values(), *shared):
            table.unpersist()
        for model in fitted:
            model.unpersist()
    models = {
        m: {metric: _mean([f.get(metric) for f in per_fold[m]]) for metric in metric_names()} for m in names
    }
    result = {
        "job": "evaluate",
        "point": runtime.als_point(config),
        "ranking": ranking,
        "folds": len(job_input["folds"]),
        "models": models,
        "seconds": {
            "shared": round(seconds["shared"], 3),
            **{part: {m: round(seconds[part][m], 3) for m in names} for part in ("fit", "lists")},
            "metrics": round(seconds["metrics"], 3),
        },
    }
    if chosen:
        result["families"] = chosen
    return result
