"""Blocked top-k lists against the cross join they replaced, on ml-latest-small, and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

from lensflow_spark import columns as C
from lensflow_spark import topn
from lensflow_spark.als import ALSConfig, ALSRuntime, movie_popularity, recommend_for_users, train_final
from lensflow_spark.baselines import GlobalMean, MostPopular, UserItemBias
from lensflow_spark.metrics import ranking_metrics, top_k
from lensflow_spark.readers import read_dataset
from lensflow_spark.splits import random_holdout

K = 10


@pytest.fixture(scope="module")
def small(spark, movielens_dir):
    ratings = read_dataset(spark, "ml-latest-small", str(movielens_dir / "ml-latest-small")).ratings
    split = random_holdout(ratings.select(C.USER_ID, C.MOVIE_ID, C.RATING), 0.2, seed=3)
    train, test = split.train.cache(), split.test.cache()
    yield train, test
    train.unpersist()
    test.unpersist()


def _dot(a, b):
    return F.aggregate(F.zip_with(a, b, lambda x, y: x * y), F.lit(0.0), lambda acc, x: acc + x)


def _cross_join_als(model, users, n, rated, popularity):
    """recommend_for_users as main had it (a users x movies cross join), the reference."""
    user_f = model.userFactors.select(F.col("id").alias(C.USER_ID), F.col("features").alias("_u"))
    movie_f = model.itemFactors.select(F.col("id").alias(C.MOVIE_ID), F.col("features").alias("_m"))
    by_model = (
        users.join(user_f, C.USER_ID)
        .crossJoin(movie_f)
        .join(rated, [C.USER_ID, C.MOVIE_ID], "left_anti")
        .select(C.USER_ID, C.MOVIE_ID, _dot(F.col("_u"), F.col("_m")).alias(C.SCORE))
    )
    by_popularity = (
        users.join(user_f, C.USER_ID, "left_anti")
        .crossJoin(popularity.select(C.MOVIE_ID, F.col("popularity").alias(C.SCORE)))
        .join(rated, [C.USER_ID, C.MOVIE_ID], "left_anti")
    )
    order = Window.partitionBy(C.USER_ID).orderBy(F.col(C.SCORE).desc(), F.col(C.MOVIE_ID).asc())
    both = by_model.unionByName(by_popularity)
    return both.withColumn(C.RANK, F.row_number().over(order)).where(F.col(C.RANK) <= n)


def _lists(df):
    return sorted((r[C.USER_ID], r[C.RANK], r[C.MOVIE_ID]) for r in df.collect())


def test_als_lists_and_metrics_equal_the_cross_join(spark, small, tmp_path):
    train, test = small
    runtime = ALSRuntime(checkpoint_dir=str(tmp_path / "ckpt"), num_blocks=2)
    model = train_final(spark, train, ALSConfig(rank=8, max_iter=5), runtime)
    # Test users include some absent from train: they get the popularity fallback in both.
    users = test.select(C.USER_ID).distinct().unionByName(spark.createDataFrame([(10**6,)], "user_id int"))
    popularity = movie_popularity(train)

    blocked = recommend_for_users(model, users, K, train, popularity).cache()
    reference = _cross_join_als(model, users, K, train, popularity).cache()

    assert blocked.count() == reference.count() > 0
    assert _lists(blocked) == _lists(reference)
    assert ranking_metrics(blocked, test, K) == ranking_metrics(reference, test, K)
    joined = blocked.join(reference.withColumnRenamed(C.SCORE, "_ref"), [C.USER_ID, C.RANK, C.MOVIE_ID])
    assert joined.agg(F.max(F.abs(F.col(C.SCORE) - F.col("_ref")))).first()[0] < 1e-5
    assert {r[0] for r in blocked.where(F.col(C.USER_ID) == 10**6).select("source").collect()} == {
        "popularity"
    }


@pytest.mark.parametrize("estimator", [GlobalMean(), UserItemBias(), MostPopular()], ids=type)
def test_baseline_lists_and_metrics_equal_the_cross_join(spark, small, estimator):
    train, test = small
    model = estimator.fit(train)
    users = test.select(C.USER_ID).distinct()
    candidates = users.crossJoin(model.items.select(C.MOVIE_ID))
    reference = top_k(model.score(candidates), K, exclude=train).cache()
    blocked = model.recommend_for_users(users, K, exclude=train).cache()

    assert _lists(blocked) == _lists(reference)
    assert ranking_metrics(blocked, test, K) == ranking_metrics(reference, test, K)
    scores = blocked.join(reference.withColumnRenamed(C.SCORE, "_ref"), [C.USER_ID, C.RANK, C.MOVIE_ID])
    assert scores.where(F.col(C.SCORE) != F.col("_ref")).count() == 0, "additive scores must be bit-equal"


def test_block_top_k_breaks_ties_by_movie_and_skips_nan():
    scores = np.array([[1.0, 2.0, 2.0, np.nan, 2.0], [np.nan, np.nan, 0.5, np.nan, np.nan]])
    rows, cols, rank = topn.block_top_k(scores, 2)
    assert list(zip(rows.tolist(), cols.tolist(), rank.tolist(), strict=True)) == [
        (0, 1, 1),
        (0, 2, 2),
        (1, 2, 1),
    ]


def test_factor_scores_exclude_rated_and_return_short_lists(spark):
    users = spark.createDataFrame([(1, [1.0, 0.0]), (2, [0.0, 1.0])], "id int, features array<float>")
    movies = spark.createDataFrame(
        [(10, [3.0, 1.0]), (20, [2.0, 2.0]), (30, [1.0, 3.0])], "id int, features array<float>"
    )
    rated = spark.createDataFrame([(1, 10), (2, 30), (2, 20)], "user_id int, movie_id int")
    got = topn.factor_scores(users, movies, 5, exclude=rated).orderBy(C.USER_ID, C.RANK).collect()
    assert [(r[C.USER_ID], r[C.MOVIE_ID], r[C.SCORE], r[C.RANK]) for r in got] == [
        (1, 20, 2.0, 1),
        (1, 30, 1.0, 2),
        (2, 10, 1.0, 1),
    ]
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        topn.factor_scores(users, movies, 0)


def test_similar_movies_are_the_nearest_by_cosine(spark):
    factors = spark.createDataFrame(
        [(1, [1.0, 0.0]), (2, [0.9, 0.1]), (3, [0.0, 1.0]), (4, [-1.0, 0.0])], "id int, features array<float>"
    )
    wanted = spark.createDataFrame([(1,), (2,), (3,), (4,)], "movie_id int")
    rows = topn.similar_by_factors(topn.collect_items(factors), wanted, 1).collect()
    assert {r[C.MOVIE_ID]: r["similar_movie_id"] for r in rows} == {1: 2, 2: 1, 3: 2, 4: 3}
    by_movie = {r[C.MOVIE_ID]: r["similarity"] for r in rows}
    assert by_movie[1] == pytest.approx(0.9 / np.hypot(0.9, 0.1), rel=1e-6)
    assert topn.similar_movies(topn.collect_items(factors), 3, 1) == [
        (2, pytest.approx(0.1 / np.hypot(0.9, 0.1)))
    ]


def test_factor_lists_skip_non_candidates_clip_after_ranking_and_explain_by_cosine(spark):
    movies = spark.createDataFrame(
        [(10, [1.0, 0.0]), (20, [0.0, 1.0]), (30, [2.0, 0.1]), (40, [0.1, 3.0])],
        "id int, features array<float>",
    )
    supports = spark.createDataFrame([(10, 9), (20, 9), (30, 9), (40, 1)], "movie_id int, support long")
    items = topn.collect_items(movies, supports=supports, min_support=2)  # 40 is below the support
    users = spark.createDataFrame([(1, [1.0, 1.0], 0.0)], "user_id int, features array<float>, offset double")
    rated = spark.createDataFrame([(1, 10), (1, 20)], "user_id int, movie_id int")
    got = topn.top_n_from_factors(users, items, rated, 3, explain=True, clip=(0.0, 1.0)).collect()
    # 30 scores 2.1 (clipped to 1.0), most like 10 by cosine; 40 (3.1) is not a candidate.
    assert [(r[C.MOVIE_ID], r[C.SCORE], r[C.RANK], r[topn.BECAUSE]) for r in got] == [(30, 1.0, 1, 10)]


def test_item_weight_lists_score_the_history_and_explain_by_the_largest_weight(spark):
    # W[j, i]: how much having rated movie j speaks for movie i (EASE's B, zero diagonal).
    weights = np.array(
        [[0, 0.5, 0.35, 0.0], [0.2, 0, 0.05, 0.5], [0.0, 0.0, 0, 0.9], [0, 0, 0, 0]], dtype=np.float32
    )
    items = topn.ItemWeights(np.array([1, 2, 3, 4]), weights)
    users = spark.createDataFrame([(7,), (8,), (9,)], "user_id int")
    rated = spark.createDataFrame([(7, 1), (7, 2), (8, 3), (9, 99)], "user_id int, movie_id int")
    lists = topn.top_n_from_item_weights(users, items, rated, 5, explain=True, clip=(0.0, 0.45))
    got = lists.orderBy(C.USER_ID, C.RANK).collect()
    # user 7 (x = [1, 1, 0, 0]): movie 4 0.0 + 0.5 (clipped to 0.45) because of 2, movie 3 0.35 + 0.05
    # because of 1; user 8: row 3 of W, ties by movie id; user 9 rated no movie of the model: no list.
    assert [(r[C.USER_ID], r[C.MOVIE_ID], r[C.RANK], r[topn.BECAUSE]) for r in got] == [
        (7, 4, 1, 2),
        (7, 3, 2, 1),
        (8, 4, 1, 3),
        (8, 1, 2, 3),
        (8, 2, 3, 3),
    ]
    assert [r[C.SCORE] for r in got] == pytest.approx([0.45, 0.4, 0.45, 0.0, 0.0])
    similar = topn.similar_by_item_weights(items, spark.createDataFrame([(2,)], "movie_id int"), 2).collect()
    assert [(r["similar_movie_id"], r["similarity"]) for r in similar] == [(4, 0.5), (1, pytest.approx(0.2))]


def test_block_top_k_equals_a_full_sort_when_scores_tie_often():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, size=(300, 50)).astype(np.float64)
    scores[rng.random(scores.shape) < 0.2] = np.nan
    scores[:3] = 1.0  # whole rows tied, as the global-mean baseline scores every movie
    scores[3] = np.nan  # nothing to list
    for k in (1, 7, 50):
        rows, cols, rank = topn.block_top_k(scores, k)
        expected = []
        for r, row in enumerate(scores):
            ok = np.flatnonzero(np.isfinite(row))
            best = ok[np.lexsort((ok, -row[ok]))][:k]
            expected += [(r, int(c), j + 1) for j, c in enumerate(best)]
        assert list(zip(rows.tolist(), cols.tolist(), rank.tolist(), strict=True)) == expected


def test_separable_lists_equal_whole_catalogue_scoring_with_rounding_ties(spark):
    """separable_top_k walks one global order of v; where rounding makes distinct v tie at a user's
    k-th score, or scores are not finite, it must still list exactly what scoring every movie lists."""
    rng = np.random.default_rng(11)
    m = 40
    ids = np.sort(rng.choice(np.arange(1, 500), size=m, replace=False))
    # Levels of v: exact repeats (ties by movie_id), and values 1e-17 apart that u = 3.5 rounds alike.
    offsets = rng.choice([0.0, 0.25, 0.1, 0.1 + 1e-17, 0.1 + 2e-17, -1.0, np.inf], size=m)
    candidate = rng.random(m) > 0.15
    items = topn.ItemMatrix(ids, np.zeros((m, 0)), offsets, candidate)
    rows = []
    for user in range(60):
        u = float(rng.choice([3.5, 0.0, -2.0, 1e300, np.nan]) if user % 7 else 3.5)
        rated = rng.choice(ids, size=int(rng.integers(0, m)), replace=False).tolist() + [10**6]
        rows.append((user, u, rated if user % 5 else None))
    users = spark.createDataFrame(rows, "user_id int, offset double, _rated array<int>")
    for k in (1, 4, 15, m + 5):
        separable = topn.separable_top_k(users, items, k)
        whole = topn._score_blocks(
            users.withColumn(topn.FEATURES, F.array().cast("array<double>")),
            items.ids,
            items.candidate,
            items,
            topn._factor_score,
            k,
        ).drop(topn.BECAUSE)
        got = sorted(tuple(r) for r in separable.collect())
        want = sorted(tuple(r) for r in whole.collect())
        assert got == want and len(want) > 0, f"k={k}"
