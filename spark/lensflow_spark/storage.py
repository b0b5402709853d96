"""Small-file I/O through Hadoop's FileSystem, so local paths and s3a:// URIs behave the same."""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import SparkSession


def _fs_path(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    """Writes one file (on S3 a single PUT on close: readers see all of it or nothing)."""
    fs, path = _fs_path(spark, uri)
    out = fs.create(path, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()


def write_json(spark: SparkSession, uri: str, doc: Any) -> None:
    """Writes `doc` as one JSON object."""
    write_bytes(spark, uri, json.dumps(doc, indent=2, sort_keys=True, allow_nan=False).encode("utf-8"))


def exists(spark: SparkSession, uri: str) -> bool:
    """Whether a file or folder exists at `uri`."""
    fs, path = _fs_path(spark, uri)
    return bool(fs.exists(path))


def list_files(spark: SparkSession, folder_uri: str, suffix: str = "") -> list[str]:
    """URIs of the files directly in a folder whose names end with `suffix`, sorted; [] if none."""
    fs, path = _fs_path(spark, folder_uri.rstrip("/") + "/")
    if not fs.exists(path):
        return []
    names = [str(status.getPath().toString()) for status in fs.listStatus(path) if status.isFile()]
    return sorted(n for n in names if n.endswith(suffix))


def read_json(spark: SparkSession, uri: str) -> Any:
    """Reads one JSON object written by `write_json`."""
    fs, path = _fs_path(spark, uri)
    stream = fs.open(path)
    try:
        reader = spark.sparkContext._jvm.java.io.BufferedReader(
            spark.sparkContext._jvm.java.io.InputStreamReader(stream, "UTF-8")
        )
        lines = []
        line = reader.readLine()
        while line is not None:
            lines.append(line)
            line = reader.readLine()
        return json.loads("\n".join(lines))
    finally:
        stream.close()
