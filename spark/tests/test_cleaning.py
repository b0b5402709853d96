"""Cleaning and features as pure functions, on a dirty fixture with every row's fate worked out by hand."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lensflow_spark import columns as C
from lensflow_spark.clean import (
    DUPLICATE,
    MISSING_VALUE,
    MOVIE_REASONS,
    OUT_OF_SCALE,
    RATING_REASONS,
    UNKNOWN_MOVIE,
    UNPARSEABLE,
    clean_movies,
    in_scale,
    split_triaged,
    triage_movies,
    triage_ratings,
)
from lensflow_spark.features import genre_list, release_year, with_rating_year
from lensflow_spark.readers import HALF_STARS, WHOLE_STARS, RatingScale, read_latest

DIRTY = Path(__file__).parent / "fixtures" / "dirty-latest"


def same_rows(actual, expected) -> bool:
    """Equal as multisets: order-free, but every row counts (None and NaN-safe, unlike sorting)."""
    return Counter(actual) == Counter(expected)


def _rating_key(row) -> tuple:
    rating = "NaN" if row.rating is not None and math.isnan(row.rating) else row.rating
    return (row.user_id, row.movie_id, rating)


@pytest.fixture(scope="module")
def dirty(spark):
    """The dirty fixture triaged once: (movie rows, rating rows), each a list of Rows with `reason`."""
    raw = read_latest(spark, str(DIRTY))
    movies = triage_movies(raw.movies).cache()
    ratings = triage_ratings(raw.ratings, split_triaged(movies).clean, HALF_STARS)
    result = movies.collect(), ratings.collect()
    movies.unpersist()
    return result


def test_reason_orders_are_documented_and_stable():
    assert RATING_REASONS == ("unparseable", "missing_value", "out_of_scale", "unknown_movie", "duplicate")
    assert MOVIE_REASONS == ("unparseable", "missing_value", "duplicate")


def test_dirty_movies_each_quarantined_once_with_the_first_reason(dirty):
    movies, _ = dirty
    # 12 data rows; the trailing blank line is not a record.
    assert len(movies) == 12
    clean = [(r.movie_id, r.title, r.year, tuple(r.genres)) for r in movies if r.reason is None]
    assert same_rows(
        clean,
        [
            (10, "Toy Story (1995)", 1995, ("Adventure", "Animation", "Children", "Comedy", "Fantasy")),
            (20, "Jumanji, The (1995)", 1995, ()),
            # Two rows share id 40: the one whose genres sort first stays, though it is second in the file.
            (40, "Heat (1995)", 1995, ("Action", "Crime", "Thriller")),
            (50, "Babylon 5", None, ("Sci-Fi",)),  # trailing space trimmed, no year: kept
            (60, "Death Note: Desu nôto (2006–2007)", 2006, ("Animation",)),
            (100, '"Great Performances" Cats (1998)', 1998, ("Musical",)),
        ],
    )
    dropped = [(r.reason, r.movie_id, r.corrupt_record) for r in movies if r.reason is not None]
    assert same_rows(
        dropped,
        [
            (DUPLICATE, 40, None),
            (MISSING_VALUE, None, None),  # no id
            (MISSING_VALUE, 30, None),  # no title
            (MISSING_VALUE, 90, None),  # empty genres field
            (UNPARSEABLE, None, "80,Two Fields Only (2001)"),
            (UNPARSEABLE, None, "x70,Nope (2000),Drama"),
        ],
    )


def test_dirty_ratings_each_quarantined_once_with_the_first_reason(dirty):
    _, ratings = dirty
    assert len(ratings) == 24
    clean = [_rating_key(r) + (r.rated_at.year,) for r in ratings if r.reason is None]
    assert same_rows(
        clean,
        [
            (1, 10, 4.0, 2000),
            (1, 20, 3.5, 2000),
            (2, 10, 5.0, 2000),  # the later of two ratings of (2, 10)
            (3, 40, 4.5, 2001),  # same second as a 2.5: the higher rating stays
            (6, 50, 4.0, 2001),  # a later 9.0 is off the scale, so it cannot displace this one
            (7, 60, 3.0, 2017),  # quoted number
            (7, 100, 4.5, 2017),  # spaces around the rating
        ],
    )
    unparseable = [r.corrupt_record for r in ratings if r.reason == UNPARSEABLE]
    assert same_rows(
        unparseable,
        [
            "4,10,3.0",  # three fields
            "4,20,3.0,964982931,7",  # five fields
            "4,60,3.0,99999999999999",  # timestamp past year 9999
            "5,abc,,964983815",  # non-numeric movie id: unparseable comes before missing_value
            "abc,10,3.0,964982931",  # non-numeric user id
        ],
    )
    others = [(r.reason,) + _rating_key(r) for r in ratings if r.reason not in (None, UNPARSEABLE)]
    assert same_rows(
        others,
        [
            (DUPLICATE, 2, 10, 3.0),
            (DUPLICATE, 3, 40, 2.5),
            (MISSING_VALUE, None, 20, 2.0),
            (MISSING_VALUE, 4, 10, None),
            (OUT_OF_SCALE, 4, 40, "NaN"),
            (OUT_OF_SCALE, 4, 40, 0.0),
            (OUT_OF_SCALE, 4, 40, 3.25),  # off the half-star step
            (OUT_OF_SCALE, 4, 40, 5.5),
            (OUT_OF_SCALE, 5, 99, 7.0),  # out_of_scale comes before unknown_movie
            (OUT_OF_SCALE, 6, 50, 9.0),
            (UNKNOWN_MOVIE, 5, 30, 4.0),  # movie 30 exists but was quarantined (no title)
            (UNKNOWN_MOVIE, 5, 99, 4.0),
        ],
    )


def test_split_drops_the_bookkeeping_columns_from_clean_rows(spark):
    raw = read_latest(spark, str(DIRTY))
    movies = clean_movies(raw.movies)
    assert movies.clean.columns == [C.MOVIE_ID, C.TITLE, C.YEAR, C.GENRES]
    assert movies.quarantined.columns == [C.MOVIE_ID, C.TITLE, C.YEAR, C.GENRES, C.CORRUPT_RECORD, C.REASON]
    ratings = triage_ratings(raw.ratings, movies.clean, HALF_STARS)
    assert ratings.columns == [C.USER_ID, C.MOVIE_ID, C.RATING, C.RATED_AT, C.CORRUPT_RECORD, C.REASON]
    assert split_triaged(ratings).clean.columns == [C.USER_ID, C.MOVIE_ID, C.RATING, C.RATED_AT]


def test_in_scale_half_and_whole_stars(spark):
    values = [0.0, 0.5, 1.0, 1.5, 2.25, 4.999999, 5.0, 5.5, -1.0, float("nan"), float("inf"), None]
    df = spark.createDataFrame([(v,) for v in values], "rating double")
    rows = df.select(
        in_scale(df.rating, HALF_STARS).alias("half"), in_scale(df.rating, WHOLE_STARS).alias("whole")
    ).collect()
    assert [r.half for r in rows] == [
        False,
        True,
        True,
        True,
        False,
        False,
        True,
        False,
        False,
        False,
        False,
        None,
    ]
    assert [r.whole for r in rows] == [
        False,
        False,
        True,
        False,
        False,
        False,
        True,
        False,
        False,
        False,
        False,
        None,
    ]


def test_rating_scale_rejects_inconsistent_bounds():
    with pytest.raises(ValueError, match="step > 0"):
        RatingScale(1.0, 5.0, 0.0)
    with pytest.raises(ValueError, match="whole number of steps"):
        RatingScale(1.0, 5.0, 1.5)


TITLE_YEARS = [
    ("Toy Story (1995)", 1995),
    ("From Dusk Till Dawn 2: Texas Blood Money (1999) ", 1999),  # trailing space (ml-latest-small)
    ("Assembly (Ji jie hao) (2007)", 2007),  # an aside in parentheses before the year
    ("Death Note: Desu nôto (2006–2007)", 2006),  # a series' range (en dash)
    ("Black Mirror (2011– )", 2011),  # open range
    ("Land Before Time III: The Time of the Great Giving (1995) (V)", 1995),  # ml-100k video release
    ("1984 (Nineteen Eighty-Four) (1984)", 1984),
    ("Remake (1984) (2011)", 2011),  # the last year wins
    ("Babylon 5", None),  # no year (ml-latest-small)
    ("unknown", None),  # ml-100k movie 267
    ("Movie 43 (2013) extended", None),  # the year is not at the end
    ("Number (12345)", None),
    ("", None),
    (None, None),
]


def test_release_year_edge_cases(spark):
    df = spark.createDataFrame([(t,) for t, _ in TITLE_YEARS], "title string")
    assert [r.year for r in df.select(release_year(df.title).alias("year")).collect()] == [
        y for _, y in TITLE_YEARS
    ]


def test_genre_list(spark):
    df = spark.createDataFrame([("Action|Crime",), ("Drama",), ("(no genres listed)",), (None,)], "g string")
    assert [r.genres for r in df.select(genre_list(df.g).alias("genres")).collect()] == [
        ["Action", "Crime"],
        ["Drama"],
        [],
        None,
    ]


def test_rating_year_is_the_utc_year_whatever_the_session_time_zone(spark):
    # 1999-12-31T23:30:00Z is already 2000 east of UTC and still 1999 in UTC.
    instant = datetime(1999, 12, 31, 23, 30, tzinfo=timezone.utc)
    df = spark.createDataFrame([(instant,)], f"{C.RATED_AT} timestamp")
    zone = spark.conf.get("spark.sql.session.timeZone")
    try:
        spark.conf.set("spark.sql.session.timeZone", "Asia/Tokyo")
        assert [r.rating_year for r in with_rating_year(df).collect()] == [1999]
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
