"""Cleaning: split each raw table into clean rows and quarantined rows with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from . import columns as C

MISSING_VALUE = "missing_value"


@dataclass(frozen=True)
class Cleaned:
    """Clean rows, and the dropped rows with a `reason` column."""

    clean: DataFrame
    quarantined: DataFrame


def drop_missing(df: DataFrame) -> Cleaned:
    """Quarantines rows with a null in any column (the seed's `dropna`), reason `missing_value`."""
    any_null = reduce(lambda a, b: a | b, (F.col(c).isNull() for c in df.columns))
    return Cleaned(
        clean=df.where(~any_null),
        quarantined=df.where(any_null).withColumn(C.REASON, F.lit(MISSING_VALUE)),
    )
