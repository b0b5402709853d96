"""Parquet tables read once per warm session: the engine caches them in memory, keyed by URI and
version, so the grid's points, the evaluation and the final fit stop re-reading the same folds and
ratings from S3. Off (a plain read) unless `enable` was called: spark-submit jobs read once anyway.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from pyspark.sql import DataFrame, SparkSession

_lock = threading.Lock()
_cache: OrderedDict[tuple[str, tuple[int, int, int]], DataFrame] = OrderedDict()
_limit = 0


def enable(max_tables: int) -> None:
    """Caches up to `max_tables` tables; the least recently used one is released beyond that."""
    global _limit
    _limit = max_tables


def _version(spark: SparkSession, uri: str) -> tuple[int, int, int]:
    """(files, bytes, newest modification) of a Parquet folder: a rewritten table is a new key."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    files = [s for s in fs.listStatus(path) if s.isFile()]
    return (
        len(files),
        sum(s.getLen() for s in files),
        max((s.getModificationTime() for s in files), default=0),
    )


def read_parquet(spark: SparkSession, uri: str) -> DataFrame:
    """The Parquet table at `uri`; from the session's cache when enabled.

    The caller gets a projection of the cached frame: it reads from the cache, and its own
    `cache()`/`unpersist()` never release the shared copy.
    """
    if _limit <= 0:
        return spark.read.parquet(uri)
    key = (uri, _version(spark, uri))
    # Under the lock, so that grid points starting together share one cached copy instead of each
    # reading and caching its own (`cache()` is lazy: this holds the lock for a schema read only).
    with _lock:
        cached = _cache.get(key)
        if cached is None:
            cached = _cache[key] = spark.read.parquet(uri).cache()
            while len(_cache) > _limit:
                _, old = _cache.popitem(last=False)
                old.unpersist()
        else:
            _cache.move_to_end(key)
    return cached.select("*")
