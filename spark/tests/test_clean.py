"""The `clean` job on tiny fixtures whose answers are counted by hand, locally and through s3a."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lensflow_spark.contracts import ContractError, validate_result
from lensflow_spark.jobs import runtime
from lensflow_spark.readers import read_dataset

FIXTURES = Path(__file__).parent / "fixtures"


def run_clean(spark, dataset: str, raw: str, out: str) -> dict:
    job_input = {"dataset": dataset, "raw": raw, "output": f"{out}/processed"}
    return runtime.execute(spark, "clean", job_input, f"{out}/clean.json")


def test_clean_quarantines_missing_and_unparseable_rows(spark, tmp_path):
    # ratings.csv: 6 rows; a missing rating and a missing timestamp are dropped as missing values, the
    # non-numeric user id as unparseable (it used to count as missing: the CSV reader turned it into
    # a null; the readers now tell the two apart).
    # movies.csv: 3 rows; one has no title.
    result = run_clean(spark, "ml-latest-small", str(FIXTURES / "tiny-latest"), str(tmp_path))

    assert result["counts"] == {
        "ratings": {"raw": 6, "clean": 3, "quarantined": {"missing_value": 2, "unparseable": 1}},
        "movies": {"raw": 3, "clean": 2, "quarantined": {"missing_value": 1}},
    }
    assert json.loads((tmp_path / "clean.json").read_text()) == result

    ratings = spark.read.parquet(result["outputs"]["ratings"])
    assert sorted((r.user_id, r.movie_id, r.rating) for r in ratings.collect()) == [
        (1, 10, 4.0),
        (1, 20, 3.5),
        (2, 10, 5.0),
    ]
    assert str(ratings.schema["rated_at"].dataType) == "TimestampType()"

    movies = {
        r.movie_id: (r.title, list(r.genres))
        for r in spark.read.parquet(result["outputs"]["movies"]).collect()
    }
    assert movies == {10: ("Toy Story (1995)", ["Adventure", "Animation"]), 20: ("Jumanji, The (1995)", [])}

    quarantined = spark.read.parquet(str(tmp_path / "processed" / "quarantine" / "ratings"))
    assert sorted((r.reason, r.corrupt_record) for r in quarantined.collect()) == [
        ("missing_value", None),
        ("missing_value", None),
        ("unparseable", "notanumber,10,3.0,964982931"),
    ]


def test_clean_reads_ml100k_tab_and_latin1_pipe_files(spark, tmp_path):
    result = run_clean(spark, "ml-100k", str(FIXTURES / "tiny-100k"), str(tmp_path))

    assert result["counts"]["ratings"] == {"raw": 3, "clean": 3, "quarantined": {}}
    movies = {
        r.movie_id: (r.title, list(r.genres))
        for r in spark.read.parquet(result["outputs"]["movies"]).collect()
    }
    assert movies == {
        10: ("Misérables, Les (1995)", ["Drama", "War"]),
        20: ("Heat (1995)", ["Action", "Crime", "Thriller"]),
    }


def test_clean_dirty_fixture_counts_reconcile_per_reason(spark, tmp_path):
    # Every row's fate is worked out in test_cleaning.py; here the job's counts, outputs and quarantine.
    result = run_clean(spark, "ml-latest-small", str(FIXTURES / "dirty-latest"), str(tmp_path))

    assert result["counts"] == {
        "ratings": {
            "raw": 24,
            "clean": 7,
            "quarantined": {
                "unparseable": 5,
                "missing_value": 2,
                "out_of_scale": 6,
                "unknown_movie": 2,
                "duplicate": 2,
            },
        },
        "movies": {
            "raw": 12,
            "clean": 6,
            "quarantined": {"unparseable": 2, "missing_value": 3, "duplicate": 1},
        },
    }
    ratings = spark.read.parquet(result["outputs"]["ratings"])
    assert ratings.columns == ["user_id", "movie_id", "rating", "rated_at", "rating_year"]
    assert sorted((r.user_id, r.movie_id, r.rating, r.rating_year) for r in ratings.collect()) == [
        (1, 10, 4.0, 2000),
        (1, 20, 3.5, 2000),
        (2, 10, 5.0, 2000),
        (3, 40, 4.5, 2001),
        (6, 50, 4.0, 2001),
        (7, 60, 3.0, 2017),
        (7, 100, 4.5, 2017),
    ]
    movies = spark.read.parquet(result["outputs"]["movies"])
    assert movies.columns == ["movie_id", "title", "year", "genres"]
    for table in ("ratings", "movies"):
        quarantined = spark.read.parquet(str(tmp_path / "processed" / "quarantine" / table))
        per_reason = {r.reason: r["count"] for r in quarantined.groupBy("reason").count().collect()}
        assert per_reason == result["counts"][table]["quarantined"]


def test_clean_real_ml_latest_small_keeps_every_row(spark, tmp_path, movielens_dir):
    result = run_clean(spark, "ml-latest-small", str(movielens_dir / "ml-latest-small"), str(tmp_path))

    assert result["counts"] == {
        "ratings": {"raw": 100_836, "clean": 100_836, "quarantined": {}},
        "movies": {"raw": 9742, "clean": 9742, "quarantined": {}},
    }
    ratings = spark.read.parquet(result["outputs"]["ratings"])
    [users, rated] = ratings.agg(F.countDistinct("user_id"), F.countDistinct("movie_id")).first()
    assert (users, rated) == (610, 9724)
    # 12 titles name no year (e.g. "Babylon 5"); 11 more end in spaces and 1 in a range, and keep
    # theirs. 34 movies are "(no genres listed)".
    movies = spark.read.parquet(result["outputs"]["movies"])
    no_year, no_genres = movies.agg(
        F.count_if(F.col("year").isNull()), F.count_if(F.size("genres") == 0)
    ).first()
    assert (no_year, no_genres) == (12, 34)


def test_unknown_dataset_is_a_clear_error(spark):
    supported = "ml-100k, ml-10m, ml-1m, ml-20m, ml-25m, ml-latest, ml-latest-small"
    with pytest.raises(ValueError, match=f"unknown dataset 'ml-7z'; supported: {supported}$"):
        read_dataset(spark, "ml-7z", "/nowhere")


def test_result_contract_rejects_counts_of_the_wrong_type():
    doc = {
        "job": "clean",
        "dataset": "ml-latest-small",
        "outputs": {"ratings": "a", "movies": "b"},
        "counts": {
            "ratings": {"raw": "6", "clean": 3, "quarantined": {}},
            "movies": {"raw": 1, "clean": 1, "quarantined": {}},
        },
    }
    with pytest.raises(ContractError, match="counts/ratings/raw"):
        validate_result("clean", doc)


@pytest.mark.s3
def test_clean_runs_unchanged_through_s3a(spark, s3_prefix, s3_client):
    bucket, key = s3_prefix.removeprefix("s3a://").split("/", 1)
    for name in ("ratings.csv", "movies.csv"):
        s3_client.upload_file(str(FIXTURES / "tiny-latest" / name), bucket, f"{key}/raw/{name}")

    result = run_clean(spark, "ml-latest-small", f"{s3_prefix}/raw/", s3_prefix)

    assert result["counts"]["ratings"] == {
        "raw": 6,
        "clean": 3,
        "quarantined": {"missing_value": 2, "unparseable": 1},
    }
    success = json.loads(
        s3_client.get_object(Bucket=bucket, Key=f"{key}/processed/ratings/_SUCCESS")["Body"].read()
    )
    assert success["committer"] == "magic"
    stored = json.loads(s3_client.get_object(Bucket=bucket, Key=f"{key}/clean.json")["Body"].read())
    assert stored == result
