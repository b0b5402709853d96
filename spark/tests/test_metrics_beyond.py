"""The metrics beyond top-k accuracy on tiny inputs with hand-computed answers: MAP and R-precision
over the whole list, R^2 and explained variance, distributional coverage, novelty, intra-list
diversity and serendipity."""

from __future__ import annotations

import math

import pytest

from lensflow_spark import metrics as M

HELD_OUT = "user_id int, movie_id int, rating double"
PREDICTIONS = "user_id int, movie_id int, rating double, prediction double"
LISTS = "user_id int, movie_id int, score double, rank int"
FEATURES = "movie_id int, features array<double>"


def lists(spark, by_user: dict[int, list[int]]):
    rows = [(u, m, float(-r), r) for u, movies in by_user.items() for r, m in enumerate(movies, start=1)]
    return spark.createDataFrame(rows, LISTS)


def test_full_list_map_and_r_precision_by_hand(spark):
    # user 1: relevant {20, 40, 50}; hits at ranks 2 and 4 -> AP = (1/2 + 2/4) / 3 = 1/3;
    #         within the first |R| = 3 ranks one hit -> R-precision 1/3.
    # user 2: relevant {10}, hit at rank 2 -> AP = (1/2) / 1; rank 1 is a miss -> R-precision 0.
    # user 3: relevant {60}, no list -> 0 and 0. user 4: nothing relevant (rating 2) -> left out.
    held_out = spark.createDataFrame(
        [(1, 20, 4.0), (1, 40, 5.0), (1, 50, 4.5), (1, 30, 2.0), (2, 10, 4.0), (3, 60, 5.0), (4, 10, 2.0)],
        HELD_OUT,
    )
    recs = lists(spark, {1: [10, 20, 30, 40], 2: [11, 10], 4: [10]})
    assert M.full_list_metrics(recs, held_out) == pytest.approx(
        {"map": (1 / 3 + 1 / 2 + 0) / 3, "r_precision": (1 / 3 + 0 + 0) / 3}
    )


def test_full_list_metrics_are_none_without_relevant_items(spark):
    held_out = spark.createDataFrame([(1, 10, 1.0)], HELD_OUT)
    assert M.full_list_metrics(lists(spark, {1: [10]}), held_out) == {"map": None, "r_precision": None}


def test_r2_and_explained_variance_differ_for_a_biased_model(spark):
    # errors r - p = -1 everywhere: SSE 3, SST 2 -> R^2 = -0.5; Var(e) = 0 -> explained variance 1.
    predictions = spark.createDataFrame([(1, 1, 1.0, 2.0), (1, 2, 2.0, 3.0), (1, 3, 3.0, 4.0)], PREDICTIONS)
    assert M.explained_rating_metrics(predictions) == pytest.approx({"r2": -0.5, "explained_variance": 1.0})


def test_r2_of_perfect_predictions_is_one_and_undefined_for_constant_ratings(spark):
    perfect = spark.createDataFrame([(1, 1, 1.0, 1.0), (1, 2, 3.0, 3.0)], PREDICTIONS)
    constant = spark.createDataFrame([(1, 1, 3.0, 2.0), (1, 2, 3.0, 4.0)], PREDICTIONS)
    assert M.explained_rating_metrics(perfect) == {"r2": 1.0, "explained_variance": 1.0}
    assert M.explained_rating_metrics(constant) == {"r2": None, "explained_variance": None}


def test_distributional_coverage_is_the_entropy_of_list_slots(spark):
    recs = lists(spark, {1: [1, 2], 2: [1, 3]})
    # k = 2: p = (2/4, 1/4, 1/4) -> H = 0.5 * 1 + 2 * 0.25 * 2 = 1.5 bits; k = 1: movie 1 only -> 0.
    assert M.distributional_coverage(recs, 2) == pytest.approx(1.5)
    assert M.distributional_coverage(recs, 1) == pytest.approx(0.0)
    assert M.distributional_coverage(lists(spark, {}), 2) is None


def test_novelty_is_mean_self_information_per_user(spark):
    # 4 training users; movie 1 rated by all (0 bits), movie 2 by one (2 bits), movie 3 by two (1 bit).
    train = spark.createDataFrame(
        [(1, 1, 4.0), (2, 1, 3.0), (3, 1, 5.0), (4, 1, 2.0), (1, 2, 3.0), (2, 3, 4.0), (3, 3, 1.0)], HELD_OUT
    )
    recs = lists(spark, {1: [1, 2], 2: [1, 3], 3: [99]})  # movie 99 is unknown: skipped (user 3 too)
    assert M.novelty(recs, train, 2) == pytest.approx(((0 + 2) / 2 + (0 + 1) / 2) / 2)
    shared = M.self_information(train)  # what evaluate computes once per fold for every model
    assert M.novelty(recs, train, 2, information=shared) == M.novelty(recs, train, 2)


FEATS = [(1, [1.0, 0.0]), (2, [0.0, 1.0]), (3, [1.0, 1.0]), (4, [0.0, 0.0])]


def test_intra_list_diversity_by_hand(spark):
    features = spark.createDataFrame(FEATS, FEATURES)
    # user 1: pairs (1,2) cos 0, (1,3) and (2,3) cos 1/sqrt2; user 2 has one movie: no pair, skipped.
    recs = lists(spark, {1: [1, 2, 3], 2: [1]})
    expected = (1.0 + 2 * (1 - 1 / math.sqrt(2))) / 3
    assert M.intra_list_diversity(recs, features, 3) == pytest.approx(expected)
    assert M.intra_list_diversity(recs, features, 1) is None
    # A movie without genres (zero vector) has cosine 0 with everything: dissimilarity 1, no error.
    assert M.intra_list_diversity(lists(spark, {1: [1, 4]}), features, 2) == pytest.approx(1.0)


def test_serendipity_is_unexpectedness_times_relevance(spark):
    features = spark.createDataFrame(FEATS, FEATURES)
    train = spark.createDataFrame([(1, 1, 5.0)], HELD_OUT)
    held_out = spark.createDataFrame([(1, 2, 1.0), (1, 3, 5.0)], HELD_OUT)
    # movie 2: unexpectedness 1 - cos(2, 1) = 1 but not relevant; movie 3: 1 - 1/sqrt2, relevant.
    recs = lists(spark, {1: [2, 3]})
    assert M.serendipity(recs, train, held_out, features, 2) == pytest.approx((1 - 1 / math.sqrt(2)) / 2)
