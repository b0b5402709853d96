"""Job `recommend`: the final ranking model's top-N per user with explanations, and similar movies.

The job fits the chosen ranking family (`families.py`: `implicit_als` or `torch_ease`) at the chosen
point on all clean ratings and serves its lists through the model's own `recommend_for_users`, the
code path `bench/models.py` measures. Writes under `output`:
- `users/` Parquet (user_id, rank, movie_id, score, title, genres, because_movie_id, because_title,
  model); never a movie the user rated, only movies with >= `minSupport` ratings, scores within the
  family's documented range (`SCORE_RANGES`);
- `json/users-<user_id div 1000>.json`: {"<user_id>": [{movieId, title, genres, score, because}]};
- `json/model.json`: which model made the lists (family, point, score label and range);
- `similar/` Parquet and `json/similar-movies.json`: for the most-rated movies, the movies nearest by
  the model's item factors (cosine), or, for EASE, with the largest item-item weights.

`minSupport` is the serving rule for movies: the model is fitted with min_support = max(the point's,
minSupport). For implicit_als that only narrows the candidates; for torch_ease it also narrows B to
those movies, the family's own meaning of the option.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from importlib import resources
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import columns as C
from .. import contracts, implicit_als, tables, torch_ease
from ..contracts import shared_fact
from ..families import FitRuntime, family
from ..storage import write_json
from ..topn import BECAUSE, ItemWeights, similar_by_factors, similar_by_item_weights

# Read back by `lensflow recommend`/`similar`; the layout is defined in src/contracts/recommendations.ts.
_LAYOUT = shared_fact("recommendation-shards")
USERS_PER_SHARD: int = _LAYOUT["usersPerShard"]
DEFAULT_MIN_SUPPORT: int = json.loads(
    resources.files(contracts).joinpath("recommend-input.schema.json").read_text("utf-8")
)["properties"]["minSupport"]["default"]
"""The serving rule's default, defined with the input contract (src/contracts/jobInputs.ts)."""
SIMILAR_FOR = 2000  # similar movies for this many most-rated movies, unless the input says
SCORE_RANGES = {"implicit_als": implicit_als.SCORE_RANGE, "torch_ease": torch_ease.SCORE_RANGE}
"""The servable ranking families and the range their served scores are clipped to."""
SIMILARITY_LABELS = {"implicit_als": "cosine of item factors", "torch_ease": "EASE item-item weight"}


def _write_user_shards(spark: SparkSession, recs: DataFrame, folder: str) -> None:
    because = F.when(
        F.col(BECAUSE).isNotNull(),
        F.struct(F.col(BECAUSE).alias("movieId"), F.col("because_title").alias("title")),
    )
    item = F.struct(
        F.col(C.MOVIE_ID).alias("movieId"), F.col(C.TITLE).alias("title"), F.col(C.GENRES).alias("genres"),
        F.col(C.SCORE).alias("score"), because.alias("because"),
    )  # fmt: skip
    per_user = recs.groupBy(C.USER_ID).agg(
        F.sort_array(F.collect_list(F.struct(C.RANK, item.alias("r")))).alias("l")
    )
    shards = per_user.groupBy((F.col(C.USER_ID) / USERS_PER_SHARD).cast("long").alias("shard")).agg(
        F.collect_list(F.struct(C.USER_ID, "l")).alias("users")
    )
    for row in shards.toLocalIterator():  # one shard (<= USERS_PER_SHARD users) on the driver at a time
        doc = {str(u[C.USER_ID]): [e["r"].asDict(recursive=True) for e in u["l"]] for u in row["users"]}
        for recs_of_user in doc.values():
            for rec in recs_of_user:
                rec["genres"] = rec["genres"] or []
        write_json(spark, f"{folder}/users-{row['shard']}.json", doc)


def served_estimator(ranking: dict[str, Any], min_support: int, runtime: FitRuntime):
    """(estimator, point) of the model `recommend` serves: the family at its point, min_support raised
    to the serving rule. `bench/serving.py` measures this same estimator beside most_popular."""
    name = ranking["family"]
    if name not in SCORE_RANGES:
        servable = ", ".join(SCORE_RANGES)
        raise ValueError(f"recommend serves a ranking family with item factors: use one of {servable}")
    point = dict(ranking["point"])
    point["min_support"] = max(int(point.get("min_support", 0)), min_support)
    return family(name).estimator(point, runtime), point


def _fit(ratings: DataFrame, ranking: dict[str, Any], min_support: int, job_input: dict[str, Any], work: str):
    lo, hi = ratings.agg(F.min(C.RATING), F.max(C.RATING)).first()
    runtime = FitRuntime(job_input["checkpoint"], work, (float(lo), float(hi)), seed=job_input["seed"])
    estimator, point = served_estimator(ranking, min_support, runtime)
    return estimator.fit(ratings), point


def _similar(model, top: DataFrame, n: int) -> DataFrame:
    if model.family == "torch_ease":
        return similar_by_item_weights(ItemWeights(model.movies, model.weights), top, n)
    return similar_by_factors(model.item_matrix(), top, n)


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    n, similar_for = job_input["n"], job_input.get("similarFor", SIMILAR_FOR)
    min_support = job_input.get("minSupport", DEFAULT_MIN_SUPPORT)
    ratings = tables.read_parquet(spark, job_input["ratings"]).select(C.USER_ID, C.MOVIE_ID, C.RATING).cache()
    movies = tables.read_parquet(spark, job_input["movies"]).select(C.MOVIE_ID, C.TITLE, C.GENRES)
    out = job_input["output"].rstrip("/")
    work = tempfile.mkdtemp(prefix="lensflow-recommend-")  # torch_ease's local fold and weights
    # Where the job's time goes; each part ends in actions (a fit, a write, a collect), so each
    # timer forces its work.
    seconds: dict[str, float] = {}
    clock = time.monotonic
    try:
        started = clock()
        model, point = _fit(ratings, job_input["ranking"], min_support, job_input, work)
        seconds["fit"] = clock() - started
        started = clock()
        family_name = model.family
        because_titles = movies.select(
            F.col(C.MOVIE_ID).alias(BECAUSE), F.col(C.TITLE).alias("because_title")
        )
        recs = (
            model.recommend_for_users(ratings.select(C.USER_ID), n, exclude=ratings, explain=True)
            .join(movies, C.MOVIE_ID, "left")
            .join(because_titles, BECAUSE, "left")
            .withColumn("model", F.lit(family_name))
        )
        recs.write.mode("overwrite").parquet(f"{out}/users")
        seconds["lists"] = clock() - started
        started = clock()
        recs = spark.read.parquet(f"{out}/users")  # served once: the JSON is built from what was written
        _write_user_shards(spark, recs, f"{out}/json")
        seconds["shards"] = clock() - started

        started = clock()
        support = ratings.groupBy(C.MOVIE_ID).agg(F.count(F.lit(1)).alias("support"))
        top = (
            support.where(F.col("support") >= point["min_support"])
            .orderBy(F.col("support").desc(), C.MOVIE_ID)
            .limit(similar_for)
        )
        titles = movies.select(
            F.col(C.MOVIE_ID).alias("similar_movie_id"), F.col(C.TITLE).alias("similar_title")
        )
        _similar(model, top, n).join(titles, "similar_movie_id", "left").write.mode("overwrite").parquet(
            f"{out}/similar"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lists = (  # similarFor x n rows at most: bounded by the option, not by the data
        spark.read.parquet(f"{out}/similar")
        .groupBy(C.MOVIE_ID)
        .agg(
            F.sort_array(
                F.collect_list(F.struct(C.RANK, "similar_movie_id", "similar_title", "similarity"))
            ).alias("l")
        )
        .collect()
    )
    similar_doc = {
        str(r[C.MOVIE_ID]): [
            {"movieId": e["similar_movie_id"], "title": e["similar_title"], "similarity": e["similarity"]}
            for e in r["l"]
        ]
        for r in lists
    }
    write_json(spark, f"{out}/json/{_LAYOUT['similarFile']}", similar_doc)
    seconds["similar"] = clock() - started
    described = {
        "family": family_name,
        "point": point,
        "scoreLabel": model.score_label,
        "scoreRange": list(SCORE_RANGES[family_name]),
        "similarity": SIMILARITY_LABELS[family_name],
    }
    write_json(spark, f"{out}/json/{_LAYOUT['modelFile']}", described)
    model.unpersist()
    ratings.unpersist()
    return {
        "job": "recommend",
        "n": n,
        "minSupport": min_support,
        "model": described,
        "outputs": {
            "userRecs": f"{out}/users",
            "userRecsJson": f"{out}/json/",
            "modelJson": f"{out}/json/{_LAYOUT['modelFile']}",
            "similarMovies": f"{out}/similar",
            "similarMoviesJson": f"{out}/json/{_LAYOUT['similarFile']}",
        },
        "nUsers": recs.select(C.USER_ID).distinct().count(),
        "seconds": {part: round(s, 3) for part, s in seconds.items()},
    }
