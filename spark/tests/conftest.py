"""Shared fixtures: one local SparkSession per test run, the shared MovieLens copies, S3 access."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from lensflow_spark.session import local_session

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def spark():
    # Python workers (pandas UDFs such as the blocked top-N) run this interpreter, not `python3`.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = local_session("lensflow-tests")
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    """The real MovieLens copies (`LENSFLOW_DATA_DIR`, by default ../shared/data/movielens)."""
    path = Path(os.environ.get("LENSFLOW_DATA_DIR", REPO.parent / "shared" / "data" / "movielens")).resolve()
    if not (path / "ml-latest-small" / "ratings.csv").exists():
        pytest.skip(f"no MovieLens copies at {path}; set LENSFLOW_DATA_DIR")
    return path


@pytest.fixture
def s3_prefix() -> str:
    """A fresh `s3a://<bucket>/pytest/<id>` folder on the local S3 server from `make up`."""
    if not os.environ.get("LENSFLOW_S3_ENDPOINT"):
        pytest.skip("LENSFLOW_S3_ENDPOINT is unset: start the local stack with `make up`")
    bucket = os.environ.get("LENSFLOW_BUCKET", "lensflow")
    return f"s3a://{bucket}/pytest/{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def s3_client():
    """boto3 against the local S3 server: an independent client to check what the jobs wrote."""
    import boto3

    endpoint = os.environ.get("LENSFLOW_S3_ENDPOINT")
    if not endpoint:
        pytest.skip("LENSFLOW_S3_ENDPOINT is unset: start the local stack with `make up`")
    return boto3.client("s3", endpoint_url=endpoint)
