"""Features derived from the raw MovieLens fields: release year, genre lists, rating year.

Pure column expressions and `DataFrame -> DataFrame` functions; nothing here runs a Spark action.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from . import columns as C

NO_GENRES = "(no genres listed)"
"""MovieLens' genre value for a movie without genres (ml-20m and later, ml-10m)."""

# A title ends in its release year: `Toy Story (1995)`. Also taken: a series' range `(2006–2007)` or
# open range `(2011– )`, whose first year is the release year, and one trailing non-numeric aside
# after the year, as ml-100k's video releases `... (1995) (V)`. Trailing spaces never count.
_TITLE_YEAR = r"\((\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?\s*)?\)(?:\s*\([^()\d]*\))?$"


def release_year(title: Column) -> Column:
    """The release year at the end of a MovieLens title, as an int; null when the title names none.

    `Toy Story (1995)` -> 1995, `Runaway Brain (1995) ` -> 1995 (trailing spaces ignored),
    `Death Note: Desu nôto (2006–2007)` -> 2006 (first year of a range),
    `Land Before Time III (1995) (V)` -> 1995, `Babylon 5` -> null, `Movie 43 (2013) extra` -> null.
    Only the last parenthesised year counts: `1984 (1984) (2011)` -> 2011.
    """
    year = F.regexp_extract(F.trim(title), _TITLE_YEAR, 1)
    return F.when(year != "", year.cast("int"))


def genre_list(genres: Column) -> Column:
    """A `|`-separated genre string as an array; MovieLens' `(no genres listed)` -> `[]`; null stays null."""
    return F.when(genres == NO_GENRES, F.array().cast("array<string>")).otherwise(F.split(genres, r"\|"))


def with_rating_year(ratings: DataFrame) -> DataFrame:
    """Adds `rating_year` (int): the calendar year of `rated_at` in UTC, whatever the session time zone."""
    # Through whole days since the epoch to a DATE, which has no time zone, unlike `year(rated_at)`.
    days = F.floor(F.unix_seconds(F.col(C.RATED_AT)) / 86_400).cast("int")
    return ratings.withColumn(C.RATING_YEAR, F.year(F.date_from_unix_date(days)))
