"""Sums and means that do not depend on the order rows and partitions are merged in.

A floating-point sum does: a resumed or faulted run reads its inputs through other caches and
partitions than an unfaulted one, and Spark merges partial sums in arrival order, so published
numbers differed in their last bits between two runs of the same input. Here each term is rounded
to 18 decimals once, in its own row; sums of these decimals are exact, hence the same in any order.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

EXACT = "decimal(38,18)"


def _exact(col: Column | str) -> Column:
    return (F.col(col) if isinstance(col, str) else col).cast(EXACT)


def exact_sum(col: Column | str) -> Column:
    """sum(col) as decimal(38, 18), the same to the last bit in any order."""
    return F.sum(_exact(col))


def exact_avg(col: Column | str) -> Column:
    """avg(col): an exact sum over the count, the same to the last bit in any order."""
    return F.avg(_exact(col))
