"""Readers of every MovieLens format on tiny inline files (answers by hand), plus the real copies' counts."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lensflow_spark import columns as C
from lensflow_spark.clean import split_triaged, triage_movies, triage_ratings
from lensflow_spark.input_files import InputFileError
from lensflow_spark.readers import (
    DATASETS,
    HALF_STARS,
    WHOLE_STARS,
    dataset_spec,
    read_dat_movies,
    read_dataset,
    read_latest_movies,
    read_latest_ratings,
    read_ml10m,
    read_ml100k_movies,
    read_ml100k_ratings,
)

RATINGS_SCHEMA = "struct<user_id:int,movie_id:int,rating:double,rated_at:timestamp,corrupt_record:string>"
MOVIES_SCHEMA = "struct<movie_id:int,title:string,year:int,genres:array<string>,corrupt_record:string>"


def utc(seconds: int) -> datetime:
    """A unix time as Spark hands it back in the tests' UTC session: a naive datetime."""
    return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)


def write(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def ratings_rows(df) -> list[tuple]:
    return [(r.user_id, r.movie_id, r.rating, r.rated_at, r.corrupt_record) for r in df.collect()]


def movies_rows(df) -> list[tuple]:
    rows = df.collect()
    return [
        (r.movie_id, r.title, r.year, None if r.genres is None else list(r.genres), r.corrupt_record)
        for r in rows
    ]


def u_item(
    movie_id: str, title: str, flags: list[str], dates: tuple[str, str, str] = ("01-Jan-1995", "", "u")
) -> str:
    return "|".join([movie_id, title, *dates, *flags])


def flags_for(*set_ones: int) -> list[str]:
    return ["1" if i in set_ones else "0" for i in range(19)]


def test_registry_names_every_release_with_its_scale():
    assert {name: spec.scale for name, spec in DATASETS.items()} == {
        "ml-latest-small": HALF_STARS,
        "ml-latest": HALF_STARS,
        "ml-20m": HALF_STARS,
        "ml-25m": HALF_STARS,
        "ml-10m": HALF_STARS,
        "ml-100k": WHOLE_STARS,
        "ml-1m": WHOLE_STARS,
    }
    assert (HALF_STARS.minimum, HALF_STARS.maximum, HALF_STARS.step) == (0.5, 5.0, 0.5)
    assert (WHOLE_STARS.minimum, WHOLE_STARS.maximum, WHOLE_STARS.step) == (1.0, 5.0, 1.0)
    with pytest.raises(
        ValueError, match=r"unknown dataset 'ml-2m'; supported: ml-100k, ml-10m, ml-1m, ml-20m"
    ):
        dataset_spec("ml-2m")


def test_latest_ratings_csv(spark, tmp_path):
    lines = [
        "\ufeffuserId,movieId,rating,timestamp",  # a byte-order mark does not hide the header
        "1,10,4.0,964982703",
        "2,20, 3.5 ,964981247",  # spaces around a value
        "",  # blank lines are not records
        "3,30,,964983815",  # missing rating: null, not corrupt
        '4,40,"4.5",0',  # a quoted number
        "5,50,1.0,-1",
        "1.0,10,4.0,964982703",  # a decimal id does not parse; the other fields still do
        "6,60,4.0",  # three fields
        '7,70,"4.0,964982703',  # an unclosed quote
        "8,80,4.0,1e9",  # timestamps are whole seconds
    ]
    path = write(tmp_path, "ratings.csv", "\r\n".join(lines).encode("utf-8") + b"\r\n")
    df = read_latest_ratings(spark, path)

    assert df.schema.simpleString() == RATINGS_SCHEMA
    assert ratings_rows(df) == [
        (1, 10, 4.0, utc(964982703), None),
        (2, 20, 3.5, utc(964981247), None),
        (3, 30, None, utc(964983815), None),
        (4, 40, 4.5, utc(0), None),
        (5, 50, 1.0, utc(-1), None),
        (None, 10, 4.0, utc(964982703), "1.0,10,4.0,964982703"),
        (None, None, None, None, "6,60,4.0"),
        (None, None, None, None, '7,70,"4.0,964982703'),
        (8, 80, 4.0, None, "8,80,4.0,1e9"),
    ]


def test_latest_movies_csv_quotes_years_and_genres(spark, tmp_path):
    lines = [
        "movieId,title,genres",
        '1,"American President, The (1995)",Comedy|Drama|Romance',
        '2,"Dr. ""Strange"" (1990)",(no genres listed)',
        "3,Runaway Brain (1995) ,Animation",
        "4,Misérables (1995),Drama",
        "5,Babylon 5,Sci-Fi",
        '6,"Bad ""quote (1995),Drama',
        "7,Extra,Fields (1995),Drama",
        "8,,Drama",
    ]
    path = write(tmp_path, "movies.csv", ("\n".join(lines) + "\n").encode("utf-8"))
    df = read_latest_movies(spark, path)

    assert df.schema.simpleString() == MOVIES_SCHEMA
    assert movies_rows(df) == [
        (1, "American President, The (1995)", 1995, ["Comedy", "Drama", "Romance"], None),
        (2, 'Dr. "Strange" (1990)', 1990, [], None),
        (3, "Runaway Brain (1995)", 1995, ["Animation"], None),
        (4, "Misérables (1995)", 1995, ["Drama"], None),
        (5, "Babylon 5", None, ["Sci-Fi"], None),
        (None, None, None, None, '6,"Bad ""quote (1995),Drama'),
        (None, None, None, None, "7,Extra,Fields (1995),Drama"),
        (8, None, None, ["Drama"], None),
    ]


def test_ml100k_u_data_tab_separated(spark, tmp_path):
    path = write(
        tmp_path, "u.data", b"196\t242\t3\t881250949\n186\t302\t3\t891717742\t9\n22\t377\t\t878887116\n"
    )
    assert ratings_rows(read_ml100k_ratings(spark, path)) == [
        (196, 242, 3.0, utc(881250949), None),
        (None, None, None, None, "186\t302\t3\t891717742\t9"),
        (22, 377, None, utc(878887116), None),
    ]


def test_ml100k_u_item_latin1_with_genre_flags(spark, tmp_path):
    empty_flag = flags_for(8)
    empty_flag[18] = ""
    lines = [
        u_item("1", "Misérables, Les (1995)", flags_for(8, 17)),  # Drama, War
        u_item("267", "unknown", flags_for(0), ("", "", "")),  # only `unknown`: no genres, no year
        u_item("3", "Land Before Time III: The Time of the Great Giving (1995) (V)", flags_for(3, 4)),
        u_item("4", "Two (1995)", ["2"] + flags_for()[1:]),  # a flag must be 0 or 1
        u_item("5", "Empty Flag (1995)", empty_flag),  # a missing flag: genres missing
        "6|Short (1995)|01-Jan-1995||u",  # no flags at all
    ]
    path = write(tmp_path, "u.item", ("\n".join(lines) + "\n").encode("latin-1"))
    df = read_ml100k_movies(spark, path)

    assert df.schema.simpleString() == MOVIES_SCHEMA
    assert movies_rows(df) == [
        (1, "Misérables, Les (1995)", 1995, ["Drama", "War"], None),
        (267, "unknown", None, [], None),
        (
            3,
            "Land Before Time III: The Time of the Great Giving (1995) (V)",
            1995,
            ["Animation", "Children's"],
            None,
        ),
        (4, "Two (1995)", 1995, [], lines[3]),
        (5, "Empty Flag (1995)", 1995, None, None),
        (None, None, None, None, lines[5]),
    ]


def test_ml1m_dat_files_split_on_double_colon_and_decode_latin1(spark, tmp_path):
    write(tmp_path, "ratings.dat", b"1::1193::5::978300760\n1::661::3:978302109\n1::914::::978301968\n")
    movies = "73::Misérables, Les (1995)::Drama|Musical\n1::Toy Story (1995)::Animation|Children's|Comedy\n"
    write(tmp_path, "movies.dat", (movies + "2::Broken::Line::Drama\n").encode("latin-1"))
    tables = read_dataset(spark, "ml-1m", str(tmp_path))

    assert tables.ratings.schema.simpleString() == RATINGS_SCHEMA
    assert ratings_rows(tables.ratings) == [
        (1, 1193, 5.0, utc(978300760), None),
        (None, None, None, None, "1::661::3:978302109"),  # a single colon: three fields
        (1, 914, None, utc(978301968), None),
    ]
    assert movies_rows(tables.movies) == [
        (73, "Misérables, Les (1995)", 1995, ["Drama", "Musical"], None),
        (1, "Toy Story (1995)", 1995, ["Animation", "Children's", "Comedy"], None),
        (None, None, None, None, "2::Broken::Line::Drama"),
    ]


def test_ml10m_movies_dat_is_utf8_and_a_stray_latin1_line_is_a_file_defect(spark, tmp_path):
    """Bytes that are not valid in the release's encoding fail the read (issue 11); the line reader
    itself still decodes such a line as latin-1 rather than U+FFFD, should one reach it."""
    data = (
        "73::Misérables, Les (1995)::Drama|Musical\n".encode()
        + "74::Café (1990)::(no genres listed)\n".encode("latin-1")
    )
    write(tmp_path, "ratings.dat", b"1::122::5::838985046\n")
    write(tmp_path, "movies.dat", data)
    with pytest.raises(
        InputFileError, match=r"^InvalidEncoding: .*/movies\.dat: its first lines are not valid UTF-8"
    ):
        read_dataset(spark, "ml-10m", str(tmp_path))

    assert movies_rows(read_ml10m(spark, str(tmp_path)).movies) == [
        (73, "Misérables, Les (1995)", 1995, ["Drama", "Musical"], None),
        (74, "Café (1990)", 1990, [], None),
    ]


def test_real_ml100k_counts(spark, movielens_dir):
    raw = read_dataset(spark, "ml-100k", str(movielens_dir / "ml-100k"))
    movies = triage_movies(raw.movies).cache()
    ratings = triage_ratings(raw.ratings, split_triaged(movies).clean, WHOLE_STARS)
    [m] = movies.agg(
        F.count("*").alias("n"),
        F.count(C.REASON).alias("dropped"),
        F.count_if(F.col(C.YEAR).isNull()).alias("no_year"),  # 267 "unknown"
        F.count_if(F.size(C.GENRES) == 0).alias("no_genres"),  # 267 and 1373, flagged `unknown` only
    ).collect()
    [r] = ratings.agg(
        F.count("*").alias("n"),
        F.count(C.REASON).alias("dropped"),
        F.countDistinct(C.USER_ID).alias("users"),
        F.countDistinct(C.MOVIE_ID).alias("movies"),
        F.min(C.RATING).alias("lo"),
        F.max(C.RATING).alias("hi"),
    ).collect()
    movies.unpersist()

    assert (m.n, m.dropped, m.no_year, m.no_genres) == (1682, 0, 1, 2)
    assert (r.n, r.dropped, r.users, r.movies, r.lo, r.hi) == (100_000, 0, 943, 1682, 1.0, 5.0)


def test_real_ml1m_movies_dat_metadata_only(spark, movielens_dir):
    # The copy has no ratings.dat, so only the movies reader runs.
    movies = triage_movies(
        read_dat_movies(spark, str(movielens_dir / "ml-1m-metadata-only" / "movies.dat"), "latin-1")
    )
    rows = movies.where((F.col(C.MOVIE_ID) == 73) | F.col(C.REASON).isNotNull() | F.col(C.YEAR).isNull())
    [n] = movies.agg(F.count("*")).first()

    assert n == 3883
    assert movies_rows(rows.drop(C.REASON)) == [
        (73, "Misérables, Les (1995)", 1995, ["Drama", "Musical"], None)
    ]
