"""Settings of the local session that the jobs read (the warm engine's session is a `local_session`)."""

from __future__ import annotations

import os
import re

import pytest

from lensflow_spark.jobs import runtime
from lensflow_spark.session import ALS_BLOCKS_CONF, SETTINGS


def test_on_local_spark_every_als_fit_gets_one_block_per_core(spark):
    local = re.fullmatch(r"local\[(\d+)\]", spark.sparkContext.master)
    if not local:
        pytest.skip(f"master {spark.sparkContext.master}: ALS keeps Spark's 10 blocks off local Spark")
    cores = int(local[1])
    assert spark.sparkContext.getConf().get(ALS_BLOCKS_CONF) == str(cores)
    assert runtime.als_runtime({"checkpoint": "file:///tmp/unused", "seed": 1}).num_blocks == cores


def test_the_session_applies_the_shared_spark_settings(spark):
    """The settings `localSparkConf` gives a local spark-submit (one definition, spark-settings.json)."""
    conf = dict(spark.sparkContext.getConf().getAll())
    expected = dict(SETTINGS["local"])
    if os.environ.get("LENSFLOW_SPARK_JARS"):
        expected |= SETTINGS["committer"]
    if os.environ.get("LENSFLOW_S3_ENDPOINT"):
        expected |= SETTINGS["s3Endpoint"]
    assert {key: conf.get(key) for key in expected} == expected
