"""The `clean` job on tiny fixtures whose answers are counted by hand, locally and through s3a."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lensflow_spark.contracts import ContractError, validate_result
from lensflow_spark.jobs import clean as clean_job
from lensflow_spark.readers import read_dataset

FIXTURES = Path(__file__).parent / "fixtures"


def run_clean(spark, dataset: str, raw: str, out: str) -> dict:
    args = clean_job.parse_args(
        ["--dataset", dataset, "--raw", raw, "--output", f"{out}/processed", "--result", f"{out}/clean.json"]
    )
    return clean_job.run(spark, args)


def test_clean_quarantines_missing_and_unparseable_rows(spark, tmp_path):
    # ratings.csv: 6 rows; a missing rating, a missing timestamp and a non-numeric user id are dropped.
    # movies.csv: 3 rows; one has no title.
    result = run_clean(spark, "ml-latest-small", str(FIXTURES / "tiny-latest"), str(tmp_path))

    assert result["counts"] == {
        "ratings": {"raw": 6, "clean": 3, "quarantined": {"missing_value": 3}},
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

    movies = {r.movie_id: (r.title, list(r.genres)) for r in spark.read.parquet(result["outputs"]["movies"]).collect()}
    assert movies == {10: ("Toy Story (1995)", ["Adventure", "Animation"]), 20: ("Jumanji, The (1995)", [])}

    quarantined = spark.read.parquet(str(tmp_path / "processed" / "quarantine" / "ratings"))
    assert {r.reason for r in quarantined.collect()} == {"missing_value"}
    assert quarantined.count() == 3


def test_clean_reads_ml100k_tab_and_latin1_pipe_files(spark, tmp_path):
    result = run_clean(spark, "ml-100k", str(FIXTURES / "tiny-100k"), str(tmp_path))

    assert result["counts"]["ratings"] == {"raw": 3, "clean": 3, "quarantined": {}}
    movies = {r.movie_id: (r.title, list(r.genres)) for r in spark.read.parquet(result["outputs"]["movies"]).collect()}
    assert movies == {
        10: ("Misérables, Les (1995)", ["Drama", "War"]),
        20: ("Heat (1995)", ["Action", "Crime", "Thriller"]),
    }


def test_unknown_dataset_is_a_clear_error(spark):
    with pytest.raises(ValueError, match="unknown dataset 'ml-7z'; supported: ml-100k, ml-latest-small"):
        read_dataset(spark, "ml-7z", "/nowhere")


def test_result_contract_rejects_counts_of_the_wrong_type():
    doc = {
        "job": "clean",
        "dataset": "ml-latest-small",
        "outputs": {"ratings": "a", "movies": "b"},
        "counts": {"ratings": {"raw": "6", "clean": 3, "quarantined": {}}, "movies": {"raw": 1, "clean": 1, "quarantined": {}}},
    }
    with pytest.raises(ContractError, match="counts/ratings/raw"):
        validate_result("clean", doc)


@pytest.mark.s3
def test_clean_runs_unchanged_through_s3a(spark, s3_prefix, s3_client):
    bucket, key = s3_prefix.removeprefix("s3a://").split("/", 1)
    for name in ("ratings.csv", "movies.csv"):
        s3_client.upload_file(str(FIXTURES / "tiny-latest" / name), bucket, f"{key}/raw/{name}")

    result = run_clean(spark, "ml-latest-small", f"{s3_prefix}/raw/", s3_prefix)

    assert result["counts"]["ratings"] == {"raw": 6, "clean": 3, "quarantined": {"missing_value": 3}}
    success = json.loads(s3_client.get_object(Bucket=bucket, Key=f"{key}/processed/ratings/_SUCCESS")["Body"].read())
    assert success["committer"] == "magic"
    stored = json.loads(s3_client.get_object(Bucket=bucket, Key=f"{key}/clean.json")["Body"].read())
    assert stored == result
