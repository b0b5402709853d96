"""The `recommend` job on ml-latest-small for every servable ranking family: what users are served."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F

from lensflow_spark import columns as C
from lensflow_spark.jobs import recommend
from lensflow_spark.readers import read_dataset

N = 5
MIN_SUPPORT = 10
USERS = 150
"""A real slice, cheap to fit twice: every rating of ml-latest-small's first USERS users."""
# Small points keep the fits cheap; the rules under test do not depend on them.
POINTS = {
    "implicit_als": {"rank": 8, "reg_param": 0.1, "max_iter": 4, "alpha": 1.0},
    "torch_ease": {"l2": 500.0},
}


@pytest.fixture(scope="module")
def staged(spark, movielens_dir, tmp_path_factory):
    data = read_dataset(spark, "ml-latest-small", str(movielens_dir / "ml-latest-small"))
    root = tmp_path_factory.mktemp("recommend")
    ratings = data.ratings.where(F.col(C.USER_ID) <= USERS).select(C.USER_ID, C.MOVIE_ID, C.RATING)
    ratings.coalesce(2).write.parquet(str(root / "ratings"))
    data.movies.select(C.MOVIE_ID, C.TITLE, C.GENRES).write.parquet(str(root / "movies"))
    return root


@pytest.fixture(scope="module", params=sorted(POINTS))
def served(request, spark, staged):
    out = staged / request.param
    job_input = {
        "ratings": str(staged / "ratings"),
        "movies": str(staged / "movies"),
        "output": str(out),
        "ranking": {"family": request.param, "point": POINTS[request.param]},
        "n": N,
        "minSupport": MIN_SUPPORT,
        "similarFor": 20,
        "seed": 7,
        "checkpoint": str(staged / "ckpt"),
    }
    result = recommend.run(spark, job_input)
    return request.param, result, spark.read.parquet(result["outputs"]["userRecs"]).cache(), out


def test_never_a_rated_movie_and_every_score_in_the_documented_range(spark, staged, served):
    family, result, recs, _ = served
    ratings = spark.read.parquet(str(staged / "ratings"))
    assert result["model"]["family"] == family
    assert result["model"]["scoreLabel"] != "predicted rating"
    lo, hi = result["model"]["scoreRange"]
    assert (lo, hi) == recommend.SCORE_RANGES[family]
    # implicit_als knows every user; EASE's B spans the movies with minSupport ratings, so a user who
    # rated none of them has no history to score and gets no list (the job reports who was served).
    support = ratings.groupBy(C.MOVIE_ID).count().where(F.col("count") >= MIN_SUPPORT)
    with_history = ratings.join(support, C.MOVIE_ID).select(C.USER_ID).distinct().count()
    served_users = USERS if family == "implicit_als" else with_history
    assert result["nUsers"] == served_users >= USERS - 5
    assert recs.count() == served_users * N
    assert recs.join(ratings, [C.USER_ID, C.MOVIE_ID]).count() == 0, "a served movie was rated by its user"
    assert recs.where((F.col(C.SCORE) < lo) | (F.col(C.SCORE) > hi) | F.isnan(C.SCORE)).count() == 0
    assert {r[0] for r in recs.select("model").distinct().collect()} == {family}


def test_only_movies_with_min_support_are_served(spark, staged, served):
    _, result, recs, _ = served
    support = spark.read.parquet(str(staged / "ratings")).groupBy(C.MOVIE_ID).count()
    assert recs.join(support, C.MOVIE_ID).where(F.col("count") < MIN_SUPPORT).count() == 0
    assert result["model"]["point"]["min_support"] == MIN_SUPPORT
    assert result["minSupport"] == MIN_SUPPORT


def test_each_recommendation_is_explained_by_a_movie_the_user_rated(spark, staged, served):
    _, _, recs, out = served
    ratings = spark.read.parquet(str(staged / "ratings"))
    assert recs.where(F.col("because_movie_id").isNull() | F.col("because_title").isNull()).count() == 0
    because = recs.select(C.USER_ID, F.col("because_movie_id").alias(C.MOVIE_ID))
    assert because.join(ratings, [C.USER_ID, C.MOVIE_ID], "left_anti").count() == 0
    shard = json.loads((out / "json" / "users-0.json").read_text())
    first = shard["1"][0]
    assert set(first) == {"movieId", "title", "genres", "score", "because"}
    assert first["because"]["title"] and len(shard["1"]) == N


def test_similar_movies_come_from_the_model_and_exclude_the_movie_itself(served):
    family, result, _, out = served
    similar = json.loads((out / "json" / "similar-movies.json").read_text())
    model = json.loads((out / "json" / "model.json").read_text())
    assert model == result["model"] and model["similarity"] == recommend.SIMILARITY_LABELS[family]
    assert len(similar) == 20
    for movie, lists in similar.items():
        assert len(lists) == N and int(movie) not in {e["movieId"] for e in lists}
        values = [e["similarity"] for e in lists]
        assert values == sorted(values, reverse=True)


def test_a_rating_family_is_refused_with_the_servable_ones_named(spark, staged):
    job_input = {
        "ratings": str(staged / "ratings"),
        "movies": str(staged / "movies"),
        "output": str(staged / "refused"),
        "ranking": {"family": "bias_als", "point": {}},
        "n": N,
        "minSupport": 0,
        "seed": 7,
        "checkpoint": str(staged / "ckpt"),
    }
    with pytest.raises(ValueError, match="implicit_als, torch_ease"):
        recommend.run(spark, job_input)
