"""Cleaning: every raw row is either kept or quarantined once, under the first reason that applies.

Reasons, checked in this order (`RATING_REASONS`, `MOVIE_REASONS`):

    ratings: unparseable, missing_value, out_of_scale, unknown_movie, duplicate
    movies:  unparseable, missing_value, duplicate

* `unparseable`: the reader could not parse the line (`corrupt_record` is set; see `readers`).
* `missing_value`: a required column is null: user_id, movie_id, rating, rated_at; or movie_id,
  title, genres (a movie's `year` may be null).
* `out_of_scale`: the rating is outside the release's `RatingScale` or off its step (NaN and
  infinities included).
* `unknown_movie`: the movie_id is not among the clean movies.
* `duplicate`: among the rows that passed every check above, the same (user_id, movie_id) more than
  once: the row with the latest `rated_at` stays; on a tie the higher rating stays (rows equal in
  both are identical, so which one stays makes no difference). Movies: the same movie_id more than
  once: the row whose title sorts first stays, then the one whose genres (joined by `|`) sort
  first; a content rule, so the outcome does not depend on file order or partitioning.

The row-level checks come first so that a broken or off-scale later rating never displaces a valid
earlier one. As each row gets exactly one outcome, raw = clean + Σ quarantined per reason, per
table.

`triage_*` label every row with its `reason` (null: clean) and `split_triaged` splits the labelled
table; the job caches the labelled table, so that writing both halves and counting them parses the
raw files once. All functions are lazy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from operator import or_

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from . import columns as C
from .readers import RatingScale

UNPARSEABLE = "unparseable"
MISSING_VALUE = "missing_value"
OUT_OF_SCALE = "out_of_scale"
UNKNOWN_MOVIE = "unknown_movie"
DUPLICATE = "duplicate"

RATING_REASONS = (UNPARSEABLE, MISSING_VALUE, OUT_OF_SCALE, UNKNOWN_MOVIE, DUPLICATE)
"""Quarantine reasons of ratings, in the order they are checked."""
MOVIE_REASONS = (UNPARSEABLE, MISSING_VALUE, DUPLICATE)
"""Quarantine reasons of movies, in the order they are checked."""

RATING_REQUIRED = (C.USER_ID, C.MOVIE_ID, C.RATING, C.RATED_AT)
MOVIE_REQUIRED = (C.MOVIE_ID, C.TITLE, C.GENRES)

_KNOWN = "_known_movie"
# How far off a whole number of steps a rating may be and still count as on the step (float noise).
_STEP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Cleaned:
    """Clean rows (without `reason`/`corrupt_record`), and the dropped rows with a `reason` column."""

    clean: DataFrame
    quarantined: DataFrame


def in_scale(rating: Column, scale: RatingScale) -> Column:
    """True when `rating` is one of the scale's values: within [minimum, maximum] and on a step."""
    steps = (rating - F.lit(scale.minimum)) / F.lit(scale.step)
    return (
        ~F.isnan(rating)
        & rating.between(scale.minimum, scale.maximum)
        & (F.abs(steps - F.rint(steps)) < _STEP_TOLERANCE)  # rint, not round: round goes through BigDecimal
    )


def _any_null(columns: Sequence[str]) -> Column:
    return reduce(or_, (F.col(c).isNull() for c in columns))


def _first_reason(checks: Sequence[tuple[str, Column]]) -> Column:
    """The reason of the first check that fails (each check is True when the row fails it), else null."""
    (reason, failed), *rest = checks
    expr = F.when(F.coalesce(failed, F.lit(False)), F.lit(reason))
    for reason, failed in rest:
        expr = expr.when(F.coalesce(failed, F.lit(False)), F.lit(reason))
    return expr


def _mark_duplicates(labelled: DataFrame, keep_first: WindowSpec) -> DataFrame:
    """Among rows still without a reason, all but the first of each `keep_first` partition are duplicates.

    `keep_first` must partition by the key and by `reason`, so that rows already quarantined never
    compete with clean ones.
    """
    later = F.col(C.REASON).isNull() & (F.row_number().over(keep_first) > 1)
    return labelled.withColumn(C.REASON, F.when(later, F.lit(DUPLICATE)).otherwise(F.col(C.REASON)))


def triage_movies(movies: DataFrame) -> DataFrame:
    """Canonical raw movies -> the same rows with `reason` (`MOVIE_REASONS`, null for a clean row)."""
    labelled = movies.withColumn(
        C.REASON,
        _first_reason(
            [
                (UNPARSEABLE, F.col(C.CORRUPT_RECORD).isNotNull()),
                (MISSING_VALUE, _any_null(MOVIE_REQUIRED)),
            ]
        ),
    )
    keep_first = Window.partitionBy(C.MOVIE_ID, C.REASON).orderBy(
        F.col(C.TITLE).asc(), F.array_join(C.GENRES, "|").asc()
    )
    return _mark_duplicates(labelled, keep_first)


def triage_ratings(ratings: DataFrame, movies: DataFrame, scale: RatingScale) -> DataFrame:
    """Canonical raw ratings -> the same rows with `reason` (`RATING_REASONS`, null for a clean row).

    `movies`: the clean movies (only `movie_id` is used); ratings of any other movie are
    `unknown_movie`. `scale`: the release's allowed ratings.
    """
    known = F.broadcast(movies.select(C.MOVIE_ID).distinct().withColumn(_KNOWN, F.lit(True)))
    labelled = ratings.join(known, on=C.MOVIE_ID, how="left").withColumn(
        C.REASON,
        _first_reason(
            [
                (UNPARSEABLE, F.col(C.CORRUPT_RECORD).isNotNull()),
                (MISSING_VALUE, _any_null(RATING_REQUIRED)),
                (OUT_OF_SCALE, ~in_scale(F.col(C.RATING), scale)),
                (UNKNOWN_MOVIE, F.col(_KNOWN).isNull()),
            ]
        ),
    )
    latest_first = Window.partitionBy(C.USER_ID, C.MOVIE_ID, C.REASON).orderBy(
        F.col(C.RATED_AT).desc(), F.col(C.RATING).desc()
    )
    return _mark_duplicates(labelled, latest_first).select(*ratings.columns, C.REASON)


def split_triaged(triaged: DataFrame) -> Cleaned:
    """Splits a `triage_*` table into clean rows (reason null) and quarantined rows (with reason)."""
    keep = F.col(C.REASON).isNull()
    return Cleaned(
        clean=triaged.where(keep).drop(C.REASON, C.CORRUPT_RECORD),
        quarantined=triaged.where(~keep),
    )


def clean_movies(movies: DataFrame) -> Cleaned:
    """`split_triaged(triage_movies(movies))`: clean movies and quarantined movies."""
    return split_triaged(triage_movies(movies))


def clean_ratings(ratings: DataFrame, movies: DataFrame, scale: RatingScale) -> Cleaned:
    """`split_triaged(triage_ratings(...))`: clean and quarantined ratings; `movies`: the clean movies."""
    return split_triaged(triage_ratings(ratings, movies, scale))
