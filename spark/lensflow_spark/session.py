"""SparkSession construction for the warm local engine, tests, notebooks and local tools (jobs on
EMR get theirs from spark-submit)."""

from __future__ import annotations

import os
import sys

from pyspark import SparkContext
from pyspark.sql import SparkSession

from .cluster import is_cluster, ship_package
from .contracts import shared_fact

SETTINGS = shared_fact("spark-settings")
"""The settings both local paths apply (`src/contracts/sparkSettings.ts`; `localSparkConf` adds them
to a local spark-submit): 127.0.0.1 binding, the S3A magic committer, path-style S3 addressing."""

SPARK_MASTER_ENV = "LENSFLOW_SPARK_MASTER"
"""The one setting naming the Spark master: unset or `local[...]` runs in-process; `spark://host:port`
targets a standalone cluster (`make cluster-up`), `yarn` a YARN cluster. The TypeScript worker reads
the same variable (settings.ts) for spark-submit."""


ALS_BLOCKS_CONF: str = SETTINGS["alsBlocksConf"]
"""User and movie blocks of every ALS fit a job makes (`ALSRuntime.num_blocks`); unset: Spark's 10.
Local Spark sets it to its cores (`local_session`, and `localSparkConf` for a local spark-submit, so
both local paths fit the same models): on 2 cores 10 blocks are 10 tiny tasks per step where 2 do."""


def als_blocks() -> int:
    """`ALS_BLOCKS_CONF` of the running Spark application, 10 when it is not set."""
    return int(SparkContext.getOrCreate().getConf().get(ALS_BLOCKS_CONF, "10"))


def spark_master(cores: int = 2) -> str:
    """The master `LENSFLOW_SPARK_MASTER` names, `local[cores]` when it is unset or empty."""
    return os.environ.get(SPARK_MASTER_ENV) or f"local[{cores}]"


def local_session(
    app_name: str = "lensflow-local",
    cores: int = 2,
    *,
    fair: bool = False,
    driver_memory: str | None = None,
    extra: dict[str, str] | None = None,
) -> SparkSession:
    """A SparkSession on `spark_master(cores)`, driver bound to 127.0.0.1, shuffles sized to `cores`.

    `fair`: jobs submitted from different threads share the cores through FAIR scheduler pools
    (the warm engine runs concurrent activities in one session). `extra`: further settings.

    With `LENSFLOW_SPARK_JARS` set the s3a jars go on the classpath, and with
    `LENSFLOW_S3_ENDPOINT` set `s3a://` talks to that server with the credentials from the
    environment (the AWS default chain), as `.lensflow/local.env` provides them.
    """
    # Python workers (pandas UDFs such as topn's blocked scoring) need this interpreter's numpy;
    # PySpark reads their interpreter from this variable only (not from spark.pyspark.python).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(spark_master(cores))
        .appName(app_name)
        .config(map=SETTINGS["local"])
        .config("spark.sql.shuffle.partitions", str(cores * 2))
        .config("spark.default.parallelism", str(cores * 2))
        .config("spark.sql.session.timeZone", "UTC")
    )
    if spark_master(cores).startswith("local"):
        builder = builder.config(ALS_BLOCKS_CONF, str(cores))
    if fair:
        builder = builder.config("spark.scheduler.mode", "FAIR")
    if driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    for key, value in (extra or {}).items():
        builder = builder.config(key, value)
    jars = os.environ.get("LENSFLOW_SPARK_JARS")
    if jars:
        classpath = os.path.join(jars, "*")
        # Executors of a cluster on this machine read the same folder; in local mode this is a no-op.
        builder = (
            builder.config("spark.driver.extraClassPath", classpath)
            .config("spark.executor.extraClassPath", classpath)
            .config(map=SETTINGS["committer"])
        )
    endpoint = os.environ.get("LENSFLOW_S3_ENDPOINT")
    if endpoint:
        builder = (
            builder.config("spark.hadoop.fs.s3a.endpoint", endpoint)
            .config("spark.hadoop.fs.s3a.endpoint.region", os.environ.get("AWS_REGION", "us-east-1"))
            .config("spark.hadoop.fs.s3a.connection.ssl.enabled", str(endpoint.startswith("https:")).lower())
            .config(map=SETTINGS["s3Endpoint"])
        )
    spark = builder.getOrCreate()
    if is_cluster(spark.sparkContext.master):
        ship_package(spark)
    return spark
