"""Spark SQL analysis on a tiny catalogue whose answers are computed by hand below."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from lensflow_spark import analysis as A
from lensflow_spark import report

UTC = dt.timezone.utc

# movie 1: four 4.5s, movie 2: a single 5.0 (the seed's query ranks it first), movie 3: 3.0, 2.0, 1.0,
# movie 4: one 2.0 and no release year, movie 5: in the catalogue, never rated.
# Σr = 18 + 5 + 6 + 2 = 31 over n = 9 ratings, so the global mean m = 31/9.
RATINGS = [
    (1, 1, 4.5, dt.datetime(2019, 1, 2, 3, 4, 5, tzinfo=UTC)),
    (2, 1, 4.5, dt.datetime(2019, 5, 1, tzinfo=UTC)),
    (3, 1, 4.5, dt.datetime(2020, 5, 1, tzinfo=UTC)),
    (4, 1, 4.5, dt.datetime(2020, 6, 1, tzinfo=UTC)),
    (1, 2, 5.0, dt.datetime(2020, 7, 1, tzinfo=UTC)),
    (1, 3, 3.0, dt.datetime(2019, 8, 1, tzinfo=UTC)),
    (2, 3, 2.0, dt.datetime(2020, 9, 1, tzinfo=UTC)),
    (3, 3, 1.0, dt.datetime(2020, 10, 1, tzinfo=UTC)),
    (5, 4, 2.0, dt.datetime(2021, 11, 30, 23, 59, 59, tzinfo=UTC)),
]
MOVIES = [
    (1, "Blockbuster (1994)", 1994, ["Drama", "Comedy"]),
    (2, "One Hit (2001)", 2001, ["Drama"]),
    (3, "Middling (2001)", 2001, ["Comedy", "Comedy"]),  # a repeated genre counts once
    (4, "No Genres", None, []),
    (5, "Unrated (1990)", 1990, ["Horror"]),
]
M = 31 / 9


def bayes(c: float, ratings: list[float]) -> float:
    return (c * M + sum(ratings)) / (c + len(ratings))


@pytest.fixture(scope="module")
def tables(spark):
    ratings = spark.createDataFrame(
        [(u, m, r, t, t.year) for u, m, r, t in RATINGS],
        "user_id int, movie_id int, rating double, rated_at timestamp, rating_year int",
    ).coalesce(1)  # one task per stage: the data is tiny and the test machine is shared
    movies = spark.createDataFrame(
        MOVIES, "movie_id int, title string, year int, genres array<string>"
    ).coalesce(1)
    return ratings, movies


@pytest.fixture(scope="module")
def summary(spark, tables):
    views_before = {t.name for t in spark.catalog.listTables()}
    doc = A.summarize(*tables, A.AnalysisConfig(min_ratings=1, prior_weight=2.0, top_n=3))
    assert {t.name for t in spark.catalog.listTables()} == views_before, "temp views must not leak"
    return doc


def test_bayesian_average_ranks_many_4_5s_above_a_single_5(summary):
    top = summary["top_movies"]  # min_ratings=1, C=2, the first 3 of 4 ranked movies

    assert [(r["rank"], r["movie_id"]) for r in top] == [(1, 1), (2, 2), (3, 4)]
    assert top[0]["bayes_rating"] == pytest.approx(bayes(2, [4.5] * 4))  # 4.148
    assert top[1]["bayes_rating"] == pytest.approx(bayes(2, [5.0]))  # 3.963, though its mean is 5.0
    assert top[2]["bayes_rating"] == pytest.approx(bayes(2, [2.0]))
    assert top[0] == {
        "rank": 1,
        "movie_id": 1,
        "title": "Blockbuster (1994)",
        "year": 1994,
        "n_ratings": 4,
        "avg_rating": 4.5,
        "bayes_rating": pytest.approx(bayes(2, [4.5] * 4)),
    }
    assert tuple(top[0]) == A.TOP_MOVIES_COLUMNS


def test_min_ratings_filters_before_ranking(tables):
    top = A.top_rated_movies(*tables, min_ratings=3, prior_weight=2.0).collect()

    assert [(r.rank, r.movie_id, r.n_ratings) for r in top] == [(1, 1, 4), (2, 3, 3)]
    # m stays the mean of all 9 ratings, not of the movies that pass the filter.
    assert top[1].bayes_rating == pytest.approx(bayes(2, [3.0, 2.0, 1.0]))


def test_zero_prior_weight_is_the_raw_mean_and_ties_are_deterministic(spark):
    ratings = spark.createDataFrame(
        [(1, 20, 4.0), (2, 10, 4.0), (3, 30, 4.0), (4, 30, 4.0), (5, 40, 1.0)],
        "user_id int, movie_id int, rating double",
    ).coalesce(1)
    movies = spark.createDataFrame(
        [(10, "A", None), (20, "B", None), (40, "D", 2001)], "movie_id int, title string, year int"
    ).coalesce(1)

    top = A.top_rated_movies(ratings, movies, min_ratings=1, prior_weight=0.0).collect()

    # 30, 10 and 20 all average 4.0: 30 has two ratings and goes first, then 10 before 20 by id.
    assert [(r.movie_id, r.bayes_rating) for r in top] == [(30, 4.0), (10, 4.0), (20, 4.0), (40, 1.0)]
    assert top[0].title is None  # rated but missing from the catalogue: kept, without a title


def test_parameters_are_validated(tables):
    with pytest.raises(ValueError, match="min_ratings"):
        A.top_rated_movies(*tables, min_ratings=0)
    with pytest.raises(ValueError, match="prior_weight"):
        A.AnalysisConfig(prior_weight=-1.0)
    with pytest.raises(ValueError, match="top_n"):
        A.AnalysisConfig(top_n=0)


def test_summary_counts_sparsity_and_time_span(summary):
    assert summary["counts"] == {"ratings": 9, "users": 5, "movies": 4, "catalogue_movies": 5}
    assert summary["global_mean"] == pytest.approx(M)
    # 9 observed cells of a 5 users × 4 rated movies matrix.
    assert summary["density"] == pytest.approx(9 / 20)
    assert summary["sparsity"] == pytest.approx(1 - 9 / 20)
    assert summary["first_rated_at"] == "2019-01-02T03:04:05Z"
    assert summary["last_rated_at"] == "2021-11-30T23:59:59Z"
    assert summary["params"] == {"min_ratings": 1, "prior_weight": 2.0, "top_n": 3}


def test_summary_rating_distribution(summary):
    assert [(r["rating"], r["n_ratings"]) for r in summary["rating_distribution"]] == [
        (1.0, 1),
        (2.0, 2),
        (3.0, 1),
        (4.5, 4),
        (5.0, 1),
    ]
    assert [r["share"] for r in summary["rating_distribution"]] == pytest.approx(
        [1 / 9, 2 / 9, 1 / 9, 4 / 9, 1 / 9]
    )


def test_summary_per_rating_year_and_release_year(summary):
    assert summary["ratings_by_rating_year"] == [
        {"rating_year": 2019, "n_ratings": 3, "n_users": 2, "avg_rating": pytest.approx(4.0)},
        {"rating_year": 2020, "n_ratings": 5, "n_users": 4, "avg_rating": pytest.approx(17 / 5)},
        {"rating_year": 2021, "n_ratings": 1, "n_users": 1, "avg_rating": pytest.approx(2.0)},
    ]
    # Movie 4 has no release year and movie 5 no ratings: neither makes a row.
    assert summary["ratings_by_release_year"] == [
        {"release_year": 1994, "n_ratings": 4, "n_movies": 1, "avg_rating": pytest.approx(4.5)},
        {"release_year": 2001, "n_ratings": 4, "n_movies": 2, "avg_rating": pytest.approx(11 / 4)},
    ]


def test_summary_genres_from_exploded_lists(summary):
    assert summary["genre_stats"] == [
        {
            "genre": "Comedy",
            "n_movies": 2,
            "n_rated_movies": 2,
            "n_ratings": 7,
            "avg_rating": pytest.approx(24 / 7),
        },
        {
            "genre": "Drama",
            "n_movies": 2,
            "n_rated_movies": 2,
            "n_ratings": 5,
            "avg_rating": pytest.approx(23 / 5),
        },
        {"genre": "Horror", "n_movies": 1, "n_rated_movies": 0, "n_ratings": 0, "avg_rating": None},
    ]


def test_summary_user_activity_long_tail(summary):
    # Ratings per user: user 1: 3, users 2 and 3: 2, users 4 and 5: 1 -> sorted [1, 1, 2, 2, 3].
    assert summary["user_activity"] == pytest.approx(
        {
            "min": 1,
            "p25": 1.0,
            "median": 2.0,
            "p75": 2.0,
            "p90": 2.6,
            "p99": 2.96,
            "max": 3,
            "mean": 1.8,
            "top_10pct_share": 3 / 9,  # ceil(0.5) = 1 user, user 1
        }
    )


def test_user_activity_histogram(tables):
    rows = A.user_activity(tables[0]).collect()

    assert [(r.ratings_per_user, r.n_users) for r in rows] == [(1, 2), (2, 2), (3, 1)]


def test_summary_is_strict_json(summary):
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary


def test_analysis_tables_are_the_documented_outputs(tables):
    out = A.analysis_tables(*tables, A.AnalysisConfig(min_ratings=1))

    assert tuple(out) == A.TABLE_NAMES
    assert tuple(out["rating_distribution"].columns) == A.RATING_DISTRIBUTION_COLUMNS
    assert tuple(out["ratings_by_rating_year"].columns) == A.RATING_YEAR_COLUMNS
    assert tuple(out["ratings_by_release_year"].columns) == A.RELEASE_YEAR_COLUMNS
    assert tuple(out["genre_stats"].columns) == A.GENRE_COLUMNS
    assert tuple(out["user_activity"].columns) == A.USER_ACTIVITY_COLUMNS
    assert tuple(out["top_movies"].columns) == A.TOP_MOVIES_COLUMNS


def test_empty_ratings_give_null_sparsity_not_an_error(spark):
    empty = spark.createDataFrame([], "user_id int, movie_id int, rating double, rated_at timestamp")

    row = A.ratings_overview(empty).first()

    assert (row.n_ratings, row.density, row.sparsity, row.first_rated_at) == (0, None, None, None)


def test_summary_renders_as_a_report(summary):
    # The report and the figures read exactly what summarize writes.
    html = report.render_report(summary)

    assert "Blockbuster (1994)" in html
    assert html.count("data:image/png;base64,") == 5
