"""Readers that turn each MovieLens release into the canonical tables.

ratings(user_id int, movie_id int, rating double, rated_at timestamp)
movies(movie_id int, title string, genres array<string>)

Readers only build lazy DataFrames; rows that do not parse come out with nulls, which cleaning
quarantines.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from . import columns as C
from . import schemas


@dataclass(frozen=True)
class RawTables:
    """The canonical raw tables of one release, before cleaning."""

    ratings: DataFrame
    movies: DataFrame


def _join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name


def _canonical_ratings(df: DataFrame) -> DataFrame:
    return df.select(
        F.col("userId").alias(C.USER_ID),
        F.col("movieId").alias(C.MOVIE_ID),
        F.col("rating").alias(C.RATING),
        F.timestamp_seconds(F.col("timestamp")).alias(C.RATED_AT),
    )


def _split_genres(col: Column) -> Column:
    """`Action|Comedy` -> [Action, Comedy]; MovieLens' `(no genres listed)` -> []."""
    return F.when(col == "(no genres listed)", F.array().cast("array<string>")).otherwise(F.split(col, r"\|"))


def read_latest(spark: SparkSession, folder: str) -> RawTables:
    """ml-latest-small, ml-latest, ml-20m, ml-25m: `ratings.csv` and `movies.csv` with headers."""
    reader = spark.read.option("header", True).option("mode", "PERMISSIVE")
    ratings = reader.schema(schemas.LATEST_RATINGS).csv(_join(folder, "ratings.csv"))
    movies = reader.schema(schemas.LATEST_MOVIES).csv(_join(folder, "movies.csv"))
    return RawTables(
        ratings=_canonical_ratings(ratings),
        movies=movies.select(
            F.col("movieId").alias(C.MOVIE_ID),
            F.col("title").alias(C.TITLE),
            _split_genres(F.col("genres")).alias(C.GENRES),
        ),
    )


def read_ml100k(spark: SparkSession, folder: str) -> RawTables:
    """ml-100k: tab-separated `u.data`, pipe-separated latin-1 `u.item` with 19 genre flags."""
    ratings = spark.read.schema(schemas.ML100K_RATINGS).option("sep", "\t").csv(_join(folder, "u.data"))
    items = (
        spark.read.schema(schemas.ML100K_MOVIES)
        .option("sep", "|")
        .option("encoding", "ISO-8859-1")
        .csv(_join(folder, "u.item"))
    )
    flags = [
        F.when(F.col(f"genre_{i}") == 1, F.lit(name)) for i, name in enumerate(schemas.ML100K_GENRES)
    ]
    return RawTables(
        ratings=_canonical_ratings(ratings),
        movies=items.select(
            F.col("movieId").alias(C.MOVIE_ID),
            F.col("title").alias(C.TITLE),
            F.filter(F.array(*flags), lambda g: g.isNotNull()).alias(C.GENRES),
        ),
    )


READERS = {"ml-latest-small": read_latest, "ml-100k": read_ml100k}


def read_dataset(spark: SparkSession, dataset: str, folder: str) -> RawTables:
    """Reads a staged release by name; raises ValueError naming the supported ones."""
    try:
        reader = READERS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; supported: {', '.join(sorted(READERS))}") from None
    return reader(spark, folder)
