"""Rating and ranking metrics on tiny inputs with hand-computed answers, and parity with Spark's
RankingEvaluator on a seeded random example."""

from __future__ import annotations

import math
import random

import pytest
from pyspark.ml.evaluation import RankingEvaluator

from lensflow_spark import metrics as M

HELD_OUT = "user_id int, movie_id int, rating double"
PREDICTIONS = "user_id int, movie_id int, rating double, prediction double"
SCORED = "user_id int, movie_id int, score double"
LISTS = "user_id int, movie_id int, score double, rank int"
PAIRS = "user_id int, movie_id int"
MOVIES = "movie_id int"

NONE = dict.fromkeys(M.RANKING_METRICS)
ZERO = dict.fromkeys(M.RANKING_METRICS, 0.0)
ONE = dict.fromkeys(M.RANKING_METRICS, 1.0)


def lists(spark, by_user: dict[int, list[int]]):
    """Top-k lists from {user: [movie at rank 1, movie at rank 2, ...]} (scores are irrelevant)."""
    rows = [(u, m, float(-r), r) for u, movies in by_user.items() for r, m in enumerate(movies, start=1)]
    return spark.createDataFrame(rows, LISTS)


# --- rmse / mae ---------------------------------------------------------------------------------


def test_rmse_and_mae_by_hand_skip_null_and_nan_predictions(spark):
    predictions = spark.createDataFrame(
        [
            (1, 1, 4.0, 3.5),  # error -0.5
            (1, 2, 3.0, 3.0),  # error  0
            (2, 1, 5.0, 3.0),  # error -2
            (2, 2, 1.0, float("nan")),  # ALS cold start: excluded
            (3, 1, 2.0, None),  # excluded
        ],
        PREDICTIONS,
    )
    assert M.rating_metrics(predictions) == pytest.approx(
        {"rmse": math.sqrt((0.25 + 0 + 4) / 3), "mae": (0.5 + 0 + 2) / 3}, abs=1e-12
    )


def test_rating_fit_metrics_are_the_error_and_explained_metrics_from_one_pass(spark):
    rng = random.Random(3)
    rows = [
        (u, m, r, r + rng.gauss(0.2, 0.7))
        for u in range(30)
        for m in range(8)
        for r in [rng.choice([1.0, 3.5, 5.0])]
    ]
    predictions = spark.createDataFrame(rows + [(99, 1, 4.0, float("nan"))], PREDICTIONS)
    together = M.rating_fit_metrics(predictions)
    assert together == {**M.rating_metrics(predictions), **M.explained_rating_metrics(predictions)}
    assert set(together) == {"rmse", "mae", "r2", "explained_variance"} and None not in together.values()
    empty = spark.createDataFrame([], PREDICTIONS)
    assert M.rating_fit_metrics(empty) == dict.fromkeys(together)


def test_rmse_and_mae_perfect_predictions_are_zero(spark):
    predictions = spark.createDataFrame([(1, 1, 4.0, 4.0), (1, 2, 2.5, 2.5)], PREDICTIONS)
    assert M.rating_metrics(predictions) == {"rmse": 0.0, "mae": 0.0}


def test_rmse_and_mae_are_none_without_usable_rows(spark):
    empty = spark.createDataFrame([], PREDICTIONS)
    all_nan = spark.createDataFrame([(1, 1, 4.0, float("nan")), (1, 2, 3.0, None)], PREDICTIONS)
    assert M.rating_metrics(empty) == {"rmse": None, "mae": None}
    assert M.rating_metrics(all_nan) == {"rmse": None, "mae": None}


def test_rmse_names_a_missing_column(spark):
    with pytest.raises(ValueError, match="lacks column.*prediction"):
        M.rmse(spark.createDataFrame([(1, 1, 4.0)], HELD_OUT))


# --- top_k ----------------------------------------------------------------------------------------


def test_top_k_excludes_rated_drops_nan_and_breaks_ties_by_movie_id(spark):
    scored = spark.createDataFrame(
        [
            (1, 10, 0.9),  # rated in training: excluded
            (1, 30, 0.5),
            (1, 20, 0.5),  # ties 30 at 0.5: lower movie_id first
            (1, 40, float("nan")),  # dropped (NaN would otherwise sort first)
            (1, 50, None),
            (1, 60, 0.1),
            (2, 10, 0.2),  # user 2 has a single candidate
        ],
        SCORED,
    )
    train = spark.createDataFrame([(1, 10)], PAIRS)
    got = M.top_k(scored, 2, exclude=train).orderBy("user_id", "rank").collect()
    assert [(r.user_id, r.movie_id, r.score, r.rank) for r in got] == [
        (1, 20, 0.5, 1),
        (1, 30, 0.5, 2),
        (2, 10, 0.2, 1),
    ]


def test_top_k_rejects_a_non_positive_k(spark):
    scored = spark.createDataFrame([], SCORED)
    with pytest.raises(ValueError, match="k must be a positive int"):
        M.top_k(scored, 0)


# --- ranking metrics ---------------------------------------------------------------------------


def tiny_ranking_case(spark):
    """Held-out ratings and top lists for the hand computation below (threshold 4.0)."""
    held_out = spark.createDataFrame(
        [
            (1, 1, 5.0),
            (1, 2, 4.0),
            (1, 3, 2.0),  # not relevant
            (1, 4, 4.0),
            (2, 5, 4.5),
            (3, 6, 3.0),  # user 3: nothing relevant, so not in any mean
            (4, 7, 5.0),  # user 4: relevant item but no list, so zeros
        ],
        HELD_OUT,
    )
    recommendations = lists(spark, {1: [1, 3, 2, 4], 2: [8, 5], 3: [6, 1]})
    return recommendations, held_out


def test_ranking_metrics_by_hand(spark):
    # k = 3, relevant = held-out rating >= 4.
    # user 1: R = {1, 2, 4}; list cut at 3 = [1, 3, 2] (4 at rank 4 is cut): hits at ranks 1 and 3.
    #   precision = 2/3, recall = 2/3
    #   DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1.5 + 1/log2(3)
    #   AP = (1/1 + 2/3) / min(3, 3) = 5/9
    # user 2: R = {5}; list [8, 5] is shorter than k: one hit at rank 2.
    #   precision = 1/3 (divided by k, not by the list length), recall = 1
    #   DCG = 1/log2(3); IDCG = 1/log2(2) = 1; AP = (1/2) / min(1, 3) = 1/2
    # user 3: no relevant held-out item: excluded. user 4: no list: all 0.
    recommendations, held_out = tiny_ranking_case(spark)
    ndcg_1 = 1.5 / (1.5 + 1 / math.log2(3))
    expected = {
        "precision_at_k": (2 / 3 + 1 / 3 + 0) / 3,
        "recall_at_k": (2 / 3 + 1 + 0) / 3,
        "ndcg_at_k": (ndcg_1 + 1 / math.log2(3) + 0) / 3,
        "map_at_k": (5 / 9 + 1 / 2 + 0) / 3,
    }
    assert M.ranking_metrics(recommendations, held_out, 3) == pytest.approx(expected, abs=1e-12)

    by_user = M.ranking_metrics_by_user(recommendations, held_out, 3).collect()
    per_user = {r.user_id: r.asDict() for r in by_user}
    assert sorted(per_user) == [1, 2, 4]
    assert (per_user[1]["n_relevant"], per_user[1]["hits"]) == (3, 2)
    assert per_user[4] == {"user_id": 4, "n_relevant": 1, "hits": 0, **ZERO}


def test_ranking_threshold_is_a_parameter(spark):
    # With threshold 2.0 user 3's rating of 3.0 for movie 6 becomes relevant, and movie 6 is
    # first on user 3's list: precision 1/3, recall 1, NDCG 1, AP 1 for user 3. User 1's movie 3
    # (rated 2.0) becomes relevant too: R = {1, 2, 3, 4}, list [1, 3, 2] all hits.
    recommendations, held_out = tiny_ranking_case(spark)
    got = M.ranking_metrics(recommendations, held_out, 3, threshold=2.0)
    assert got["recall_at_k"] == pytest.approx((3 / 4 + 1 + 1 + 0) / 4, abs=1e-12)
    assert got["precision_at_k"] == pytest.approx((1 + 1 / 3 + 1 / 3 + 0) / 4, abs=1e-12)


def test_ranking_metrics_perfect_lists_score_one(spark):
    held_out = spark.createDataFrame(
        [(1, 1, 5.0), (1, 2, 4.0), (2, 3, 4.0), (2, 4, 4.0), (2, 5, 1.0)], HELD_OUT
    )
    recommendations = lists(spark, {1: [2, 1], 2: [4, 3, 5]})
    assert M.ranking_metrics(recommendations, held_out, 2) == pytest.approx(ONE, abs=1e-12)


def test_ranking_metrics_without_hits_are_zero(spark):
    held_out = spark.createDataFrame([(1, 1, 5.0), (2, 3, 4.0)], HELD_OUT)
    assert M.ranking_metrics(lists(spark, {1: [7, 8], 2: [9]}), held_out, 2) == ZERO
    assert M.ranking_metrics(spark.createDataFrame([], LISTS), held_out, 2) == ZERO


def test_ranking_metrics_are_none_without_relevant_held_out_items(spark):
    recommendations = lists(spark, {1: [1, 2]})
    assert M.ranking_metrics(recommendations, spark.createDataFrame([], HELD_OUT), 2) == NONE
    assert M.ranking_metrics(recommendations, spark.createDataFrame([(1, 1, 3.0)], HELD_OUT), 2) == NONE


def test_one_metric_functions_return_their_entry_of_the_shared_computation(monkeypatch):
    # rmse/mae and the four ranking metrics are views of rating_metrics / ranking_metrics (one
    # action for all); checked without Spark so the suite stays fast.
    calls = []

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        return {name: float(i) for i, name in enumerate(M.RATING_METRICS + M.RANKING_METRICS)}

    monkeypatch.setattr(M, "rating_metrics", fake)
    monkeypatch.setattr(M, "ranking_metrics", fake)
    assert (M.rmse("p"), M.mae("p", label_col="r", prediction_col="q")) == (0.0, 1.0)
    got = [getattr(M, name)("recs", "held", 7, threshold=3.5) for name in M.RANKING_METRICS]
    assert got == [2.0, 3.0, 4.0, 5.0]
    assert calls[1] == (("p",), {"label_col": "r", "prediction_col": "q"})
    assert calls[2:] == [(("recs", "held", 7), {"threshold": 3.5})] * 4


# --- catalogue coverage --------------------------------------------------------------------------


def test_catalogue_coverage_by_hand(spark):
    catalogue = spark.createDataFrame([(m,) for m in [1, 2, 3, 4, 5, 5]], MOVIES)  # 5 distinct movies
    # At k = 2: movies 1, 2, 3 and 9; 9 is outside the catalogue, 4 only at rank 3. 3 of 5 covered.
    recommendations = lists(spark, {1: [1, 2, 4], 2: [2, 3], 3: [9, 1]})
    assert M.catalogue_coverage(recommendations, catalogue, 2) == pytest.approx(3 / 5)
    assert M.catalogue_coverage(recommendations, catalogue, 3) == pytest.approx(4 / 5)


def test_catalogue_coverage_perfect_empty_and_no_hit(spark):
    catalogue = spark.createDataFrame([(1,), (2,)], MOVIES)
    assert M.catalogue_coverage(lists(spark, {1: [1], 2: [2]}), catalogue, 1) == 1.0
    assert M.catalogue_coverage(spark.createDataFrame([], LISTS), catalogue, 1) == 0.0
    assert M.catalogue_coverage(lists(spark, {1: [1]}), spark.createDataFrame([], MOVIES), 1) is None


# --- parity with Spark's RankingEvaluator ---------------------------------------------------------

EVALUATOR_METRIC = {
    "precision_at_k": "precisionAtK",
    "recall_at_k": "recallAtK",
    "ndcg_at_k": "ndcgAtK",
    "map_at_k": "meanAveragePrecisionAtK",
}


def random_case(seed: int):
    """Training pairs, held-out ratings and candidate scores for 40 users over 30 movies.

    Scores are rounded to one decimal so ties are common; some users have few candidates (lists
    shorter than k) or none, some many relevant items (more than k), some none (excluded from the mean).
    """
    rng = random.Random(seed)
    train, held_out, scored = [], [], []
    for user in range(1, 41):
        movies = rng.sample(range(1, 31), rng.randint(0, 16))
        split = rng.randint(0, len(movies))
        train += [(user, m) for m in movies[:split]]
        held_out += [(user, m, rng.choice([1.0, 2.0, 3.0, 3.5, 4.0, 4.5, 5.0])) for m in movies[split:]]
        n_candidates = 0 if user % 7 == 0 else rng.randint(1, 30)  # every 7th user: no list at all
        scored += [(user, m, round(rng.random(), 1)) for m in rng.sample(range(1, 31), n_candidates)]
    return train, held_out, scored


def test_ranking_metrics_match_spark_ranking_evaluator(spark):
    train, held_out, scored = random_case(seed=20240611)
    ks = (3, 10)  # 3: users with more relevant items than k; 10: lists shorter than k

    # Reference input, built in plain Python: per user with a relevant held-out item, the full
    # candidate list without training items, sorted by (score desc, movie_id asc), and the
    # relevant set (rating >= 4). RankingEvaluator cuts the list at k itself.
    rated = set(train)
    relevant: dict[int, set[int]] = {}
    for user, movie, rating in held_out:
        if rating >= 4.0:
            relevant.setdefault(user, set()).add(movie)
    ranked: dict[int, list[int]] = {}
    for user, movie, _ in sorted(scored, key=lambda r: (r[0], -r[2], r[1])):
        if (user, movie) not in rated:
            ranked.setdefault(user, []).append(movie)
    assert len(relevant) >= 15 and any(u not in ranked for u in relevant)
    assert any(0 < len(ranked.get(u, [])) < 10 for u in relevant)
    assert any(len(r) > 3 for r in relevant.values()) and len(relevant) < 40
    evaluator_input = spark.createDataFrame(
        [([float(m) for m in ranked.get(u, [])], [float(m) for m in sorted(r)]) for u, r in relevant.items()],
        "prediction array<double>, label array<double>",
    )

    recommendations = M.top_k(
        spark.createDataFrame(scored, SCORED),
        max(ks),
        exclude=spark.createDataFrame(train, PAIRS),
    ).cache()
    ours_lists: dict[int, list[int]] = {}
    for row in recommendations.orderBy("user_id", "rank").collect():
        ours_lists.setdefault(row.user_id, []).append(row.movie_id)
    assert ours_lists == {u: movies[: max(ks)] for u, movies in ranked.items()}

    held_out_df = spark.createDataFrame(held_out, HELD_OUT)
    relevant = M.relevant_sets(held_out_df).cache()
    for k in ks:
        ours = M.ranking_metrics(recommendations, held_out_df, k)
        for name, spark_name in EVALUATOR_METRIC.items():
            theirs = RankingEvaluator(metricName=spark_name, k=k).evaluate(evaluator_input)
            assert ours[name] == pytest.approx(theirs, abs=1e-9), (name, k)
        # With the relevant sets computed once (evaluate shares them across models): the same numbers.
        assert M.ranking_metrics(recommendations, held_out_df, k, relevant=relevant) == ours
        by_user = M.ranking_metrics_by_user(recommendations, held_out_df, k, relevant=relevant)
        assert sorted(map(tuple, by_user.collect())) == sorted(
            map(tuple, M.ranking_metrics_by_user(recommendations, held_out_df, k).collect())
        )
    relevant.unpersist()
    recommendations.unpersist()
