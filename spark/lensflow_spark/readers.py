"""Readers that turn each MovieLens release into the canonical raw tables.

    ratings(user_id int, movie_id int, rating double, rated_at timestamp, corrupt_record string)
    movies(movie_id int, title string, year int, genres array<string>, corrupt_record string)

Every file is read as text lines and split explicitly into the fields of its `schemas` StructType:
never inferSchema, and not Spark's CSV reader, whose corrupt-record column depends on which columns
a query happens to select. That keeps apart the two kinds of incomplete rows that cleaning
quarantines for different reasons:

* unparseable: `corrupt_record` holds the source line. The line has the wrong number of fields, or a
  field that does not convert to its type: a non-numeric id, a timestamp that is not whole seconds
  within years 1–9999, an ml-100k genre flag other than 0/1. Fields that did convert keep their
  values, the others are null.
* missing: an empty (or all-space) field is null while `corrupt_record` is null.

A record is one line (no MovieLens file has quoted line breaks). Blank lines and a CSV file's header
line are not records and are skipped; values are trimmed of spaces. Lines are decoded as each
release documents: latin-1 for ml-100k `u.item` and ml-1m `movies.dat`, UTF-8 elsewhere; a line of a
UTF-8 file that is not valid UTF-8 is decoded as latin-1 rather than turned into U+FFFD (ml-10m's
`movies.dat` is documented as UTF-8 but was not available to check). Titles are trimmed; `year` is
`features.release_year(title)`; genres are arrays, `[]` for none (`(no genres listed)`, or ml-100k's
`unknown` flag alone).

Readers only build lazy DataFrames; `read_dataset` picks the reader by release name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce
from operator import or_
from types import MappingProxyType

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructType

from . import columns as C
from . import schemas
from .features import genre_list, release_year
from .input_files import LATEST, Encoding, check_release_file, release_format

Splitter = Callable[[Column], Column]

_LINE = "_line"
_TOKENS = "_tokens"
_WELL_FORMED = "_well_formed"
# Unix seconds taken as a timestamp: years 1 to 9999 (beyond, timestamp_seconds can overflow).
_MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
# One CSV field: quoted (`""` escapes a quote) or bare. Possessive, so long titles cannot backtrack.
_CSV_FIELD = r'(?:"(?:[^"]++|"")*+"|[^,"]*+)'
# Every field of a line: what follows the line's start or a comma (the line is checked as a whole first).
_CSV_FIELDS = rf"(?<=^|,)({_CSV_FIELD})"


@dataclass(frozen=True)
class RawTables:
    """The canonical raw tables of one release, before cleaning."""

    ratings: DataFrame
    movies: DataFrame


@dataclass(frozen=True)
class RatingScale:
    """The ratings a release allows: `minimum` to `maximum` in steps of `step` (cleaning's `out_of_scale`)."""

    minimum: float
    """Lowest allowed rating."""
    maximum: float
    """Highest allowed rating; must lie a whole number of steps above `minimum`."""
    step: float
    """Distance between neighbouring allowed ratings, e.g. 0.5 for half stars."""

    def __post_init__(self) -> None:
        if not (self.step > 0 and self.minimum < self.maximum):
            raise ValueError(f"need step > 0 and minimum < maximum: {self}")
        steps = (self.maximum - self.minimum) / self.step
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError(f"maximum is not a whole number of steps above minimum: {self}")


HALF_STARS = RatingScale(0.5, 5.0, 0.5)
"""ml-latest-small, ml-latest, ml-10m, ml-20m, ml-25m: 0.5 to 5.0 stars in half stars."""
WHOLE_STARS = RatingScale(1.0, 5.0, 1.0)
"""ml-100k, ml-1m: whole stars 1 to 5."""


def _join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name


def _encoding(dataset: str, name: str) -> Encoding:
    return release_format(dataset, name).encoding


def _read_lines(spark: SparkSession, path: str, encoding: Encoding, header: str | None = None) -> DataFrame:
    """The file's records as decoded text lines in column `_line`: no blank lines, no header line."""
    if encoding not in ("utf-8", "latin-1"):
        raise ValueError(f"unsupported encoding {encoding!r}")
    # spark.read.text keeps a line's bytes as they are, so latin-1 can still be decoded exactly. Bytes
    # that are not UTF-8 read as U+FFFD once Spark sees them as text; a UTF-8 line holds no U+FFFD.
    # (Not `is_valid_utf8`: Spark 4 only, and EMR 7 runs Spark 3.5.) ASCII lines, as many bytes as
    # characters, skip the regex.
    value = F.col("value")
    latin1 = F.decode(value.cast("binary"), "ISO-8859-1")
    not_utf8 = (F.octet_length(value) != F.length(value)) & value.rlike("\ufffd")
    text = latin1 if encoding == "latin-1" else F.when(not_utf8, latin1).otherwise(value)
    # The filter looks at the raw line only: Spark pushes it below the decoding and would decode twice.
    # The text reader already drops the `\r` of CRLF line ends; a byte-order mark can only precede the
    # header.
    keep = F.trim(value) != ""
    if header is not None:
        keep = keep & ~value.isin(header, "\ufeff" + header)
    return spark.read.text(path).where(keep).select(text.alias(_LINE))


def _split_on(separator: str) -> Splitter:
    """Splits on a literal separator, keeping empty fields (`a::::b` has three)."""
    # re.escape leaves a one-character separator in the form Java's String.split splits without a regex.
    pattern = re.escape(separator)
    return lambda line: F.split(line, pattern, -1)


def _unquote(token: Column) -> Column:
    inner = F.regexp_replace(F.regexp_extract(token, r'^"(.*)"$', 1), '""', '"')
    return F.when(token.startswith('"'), inner).otherwise(token)


def _split_csv(n_fields: int) -> Splitter:
    """Splits an RFC 4180 CSV line into `n_fields` fields; null when it is not that (a stray quote, a
    quoted field with text around it). Lines without quotes, nearly all, take the fast path.

    Kept to few expressions: generated code over 8000 bytes a method is not JIT-compiled, and the
    parsing stage runs interpreted and several times slower.
    """
    whole_line = "^" + ",".join([_CSV_FIELD] * n_fields) + "$"

    def split(line: Column) -> Column:
        quoted = F.transform(F.regexp_extract_all(line, F.lit(_CSV_FIELDS), 1), _unquote)
        return F.when(~line.contains('"'), F.split(line, ",", -1)).when(line.rlike(whole_line), quoted)

    return split


def _parse_fields(lines: DataFrame, schema: StructType, split: Splitter) -> DataFrame:
    """Lines -> one column per field of `schema`, converted to its type, plus `corrupt_record` and `_line`.

    Empty fields are null. A line that does not split into exactly the schema's fields, or has a
    non-empty field that does not convert, gets `corrupt_record` = the line.
    """
    # One step per stage, so that no expression runs twice per line: Spark keeps projections apart
    # when collapsing them would repeat an expensive expression.
    split_lines = lines.select(_LINE, split(F.col(_LINE)).alias(_TOKENS))
    names = [f"_token{i}" for i in range(len(schema.fields))]
    well_formed = F.coalesce(F.size(_TOKENS) == len(schema.fields), F.lit(False))
    trimmed = split_lines.select(
        _LINE,
        well_formed.alias(_WELL_FORMED),
        *(F.when(well_formed, F.trim(F.get(_TOKENS, i))).alias(name) for i, name in enumerate(names)),
    )
    values: list[Column] = []
    unparseable: list[Column] = [~F.col(_WELL_FORMED)]
    for name, field in zip(names, schema.fields, strict=True):
        present = F.col(name) != ""
        if isinstance(field.dataType, StringType):
            values.append(F.when(present, F.col(name)).alias(field.name))
        else:
            # SQL try_cast rather than Column.try_cast, which PySpark 3.5 lacks.
            cast = F.expr(f"try_cast({name} AS {field.dataType.simpleString()})")
            values.append(F.when(present, cast).alias(field.name))
            unparseable.append(present & F.col(field.name).isNull())
    converted = trimmed.select(_LINE, _WELL_FORMED, *names, *values)
    corrupt = F.coalesce(reduce(or_, unparseable), F.lit(False))
    return converted.select(
        *schema.fieldNames(), F.when(corrupt, F.col(_LINE)).alias(C.CORRUPT_RECORD), _LINE
    )


def _flag_unparseable(parsed: DataFrame, bad: Column) -> DataFrame:
    """Also marks the lines where `bad` holds as unparseable."""
    flagged = F.coalesce(F.col(C.CORRUPT_RECORD), F.when(F.coalesce(bad, F.lit(False)), F.col(_LINE)))
    return parsed.withColumn(C.CORRUPT_RECORD, flagged)


def _canonical_ratings(parsed: DataFrame, schema: StructType) -> DataFrame:
    """Parsed `user, movie, rating, seconds` fields (in that order) -> canonical raw ratings."""
    user, movie, rating, seconds = (F.col(name) for name in schema.fieldNames())
    in_range = seconds.between(_MIN_SECONDS, _MAX_SECONDS)
    return _flag_unparseable(parsed, seconds.isNotNull() & ~in_range).select(
        user.alias(C.USER_ID),
        movie.alias(C.MOVIE_ID),
        rating.alias(C.RATING),
        F.when(in_range, F.timestamp_seconds(seconds)).alias(C.RATED_AT),
        C.CORRUPT_RECORD,
    )


def _canonical_movies(parsed: DataFrame, movie_id: Column, title: Column, genres: Column) -> DataFrame:
    return parsed.select(
        movie_id.alias(C.MOVIE_ID),
        title.alias(C.TITLE),
        release_year(title).alias(C.YEAR),
        genres.alias(C.GENRES),
        C.CORRUPT_RECORD,
    )


def read_latest_ratings(spark: SparkSession, path: str) -> DataFrame:
    """`ratings.csv` of ml-latest-small, ml-latest, ml-20m, ml-25m as canonical raw ratings."""
    fmt = release_format(LATEST, "ratings.csv")
    lines = _read_lines(spark, path, fmt.encoding, header=fmt.header)
    parsed = _parse_fields(lines, schemas.LATEST_RATINGS, _split_csv(len(schemas.LATEST_RATINGS.fields)))
    return _canonical_ratings(parsed, schemas.LATEST_RATINGS)


def read_latest_movies(spark: SparkSession, path: str) -> DataFrame:
    """`movies.csv` of ml-latest-small, ml-latest, ml-20m, ml-25m as canonical raw movies."""
    fmt = release_format(LATEST, "movies.csv")
    lines = _read_lines(spark, path, fmt.encoding, header=fmt.header)
    parsed = _parse_fields(lines, schemas.LATEST_MOVIES, _split_csv(len(schemas.LATEST_MOVIES.fields)))
    return _canonical_movies(parsed, F.col("movieId"), F.col("title"), genre_list(F.col("genres")))


def read_ml100k_ratings(spark: SparkSession, path: str) -> DataFrame:
    """ml-100k's tab-separated `u.data` (or any of its `u*.base`/`u*.test`) as canonical raw ratings."""
    fmt = release_format("ml-100k", "u.data")
    parsed = _parse_fields(
        _read_lines(spark, path, fmt.encoding), schemas.ML100K_RATINGS, _split_on(fmt.delimiter)
    )
    return _canonical_ratings(parsed, schemas.ML100K_RATINGS)


def read_ml100k_movies(spark: SparkSession, path: str) -> DataFrame:
    """ml-100k's pipe-separated latin-1 `u.item` as canonical raw movies.

    The 19 genre flags become the names of the flags set to 1, in `u.genre` order; the `unknown`
    flag is ml-100k's "no genre" and is left out, as `(no genres listed)` is elsewhere. A flag that
    is empty makes `genres` missing; one other than 0/1 makes the line unparseable.
    """
    fmt = release_format("ml-100k", "u.item")
    parsed = _parse_fields(
        _read_lines(spark, path, fmt.encoding), schemas.ML100K_MOVIES, _split_on(fmt.delimiter)
    )
    flags = [F.col(f"genre_{i}") for i in range(len(schemas.ML100K_GENRES))]
    parsed = _flag_unparseable(parsed, reduce(or_, (~flag.isin(0, 1) for flag in flags)))
    named = F.array(
        *(F.when(flag == 1, F.lit(name)) for name, flag in zip(schemas.ML100K_GENRES, flags, strict=True))
    )
    genres = F.filter(named, lambda g: g.isNotNull() & (g != schemas.ML100K_GENRES[0]))
    any_missing = reduce(or_, (flag.isNull() for flag in flags))
    return _canonical_movies(parsed, F.col("movieId"), F.col("title"), F.when(~any_missing, genres))


def read_dat_ratings(spark: SparkSession, path: str) -> DataFrame:
    """ml-1m / ml-10m `ratings.dat` (`UserID::MovieID::Rating::Timestamp`) as canonical raw ratings."""
    fmt = release_format("ml-1m", "ratings.dat")
    parsed = _parse_fields(
        _read_lines(spark, path, fmt.encoding), schemas.DAT_RATINGS, _split_on(fmt.delimiter)
    )
    return _canonical_ratings(parsed, schemas.DAT_RATINGS)


def read_dat_movies(spark: SparkSession, path: str, encoding: Encoding) -> DataFrame:
    """ml-1m / ml-10m `movies.dat` (`MovieID::Title::Genres`) as canonical raw movies.

    `encoding`: "latin-1" for ml-1m, "utf-8" for ml-10m.
    """
    delimiter = release_format("ml-1m", "movies.dat").delimiter
    parsed = _parse_fields(_read_lines(spark, path, encoding), schemas.DAT_MOVIES, _split_on(delimiter))
    return _canonical_movies(parsed, F.col("MovieID"), F.col("Title"), genre_list(F.col("Genres")))


def read_latest(spark: SparkSession, folder: str) -> RawTables:
    """ml-latest-small, ml-latest, ml-20m, ml-25m: `ratings.csv` and `movies.csv` with headers."""
    return RawTables(
        ratings=read_latest_ratings(spark, _join(folder, "ratings.csv")),
        movies=read_latest_movies(spark, _join(folder, "movies.csv")),
    )


def read_ml100k(spark: SparkSession, folder: str) -> RawTables:
    """ml-100k: tab-separated `u.data`, pipe-separated latin-1 `u.item` with 19 genre flags."""
    return RawTables(
        ratings=read_ml100k_ratings(spark, _join(folder, "u.data")),
        movies=read_ml100k_movies(spark, _join(folder, "u.item")),
    )


def read_ml1m(spark: SparkSession, folder: str) -> RawTables:
    """ml-1m: `::`-separated `ratings.dat` and latin-1 `movies.dat`."""
    return RawTables(
        ratings=read_dat_ratings(spark, _join(folder, "ratings.dat")),
        movies=read_dat_movies(
            spark, _join(folder, "movies.dat"), release_format("ml-1m", "movies.dat").encoding
        ),
    )


def read_ml10m(spark: SparkSession, folder: str) -> RawTables:
    """ml-10m (the zip's `ml-10M100K/` folder): `::`-separated `ratings.dat` and UTF-8 `movies.dat`."""
    return RawTables(
        ratings=read_dat_ratings(spark, _join(folder, "ratings.dat")),
        movies=read_dat_movies(
            spark, _join(folder, "movies.dat"), release_format("ml-10m", "movies.dat").encoding
        ),
    )


@dataclass(frozen=True)
class DatasetSpec:
    """How to read one MovieLens release, and the rating scale its README documents."""

    read: Callable[[SparkSession, str], RawTables]
    """Reader of the release's staged folder; checks the files it reads first (`input_files`)."""
    scale: RatingScale
    """Allowed ratings."""


def _checked(dataset: str, reader: Callable[[SparkSession, str], RawTables], files: tuple[str, ...]):
    """`reader`, after a file-level check of each of `files` (a small read of their first lines)."""

    def read(spark: SparkSession, folder: str) -> RawTables:
        for name in files:
            check_release_file(spark, dataset, name, _join(folder, name))
        return reader(spark, folder)

    return read


_LATEST_FILES = ("ratings.csv", "movies.csv")
_DAT_FILES = ("ratings.dat", "movies.dat")
DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        "ml-latest-small": DatasetSpec(_checked("ml-latest-small", read_latest, _LATEST_FILES), HALF_STARS),
        "ml-latest": DatasetSpec(_checked("ml-latest", read_latest, _LATEST_FILES), HALF_STARS),
        "ml-20m": DatasetSpec(_checked("ml-20m", read_latest, _LATEST_FILES), HALF_STARS),
        "ml-25m": DatasetSpec(_checked("ml-25m", read_latest, _LATEST_FILES), HALF_STARS),
        "ml-100k": DatasetSpec(_checked("ml-100k", read_ml100k, ("u.data", "u.item")), WHOLE_STARS),
        "ml-1m": DatasetSpec(_checked("ml-1m", read_ml1m, _DAT_FILES), WHOLE_STARS),
        "ml-10m": DatasetSpec(_checked("ml-10m", read_ml10m, _DAT_FILES), HALF_STARS),
    }
)
"""Every supported release by name (the names of the TypeScript `DatasetName` enum)."""


def dataset_spec(dataset: str) -> DatasetSpec:
    """The registry entry of a release; raises ValueError naming the supported ones."""
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; supported: {', '.join(sorted(DATASETS))}") from None


def read_dataset(spark: SparkSession, dataset: str, folder: str) -> RawTables:
    """Reads a staged release by name as canonical raw tables, after checking its files (raises
    `input_files.InputFileError` for a file-level defect, ValueError for an unknown name)."""
    return dataset_spec(dataset).read(spark, folder)
