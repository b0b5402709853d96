"""Training a PyTorch family the Spark way, shared by every torch model: the fold as Parquet, and
one run of Spark's own `TorchDistributor` (local mode here, the same call on EMR; a GPU when torch
sees one)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame

from . import columns as C


def write_training_ratings(ratings: DataFrame, work_dir: str) -> tuple[str, str]:
    """Writes `ratings` as one Parquet file under `<work_dir>/train`; returns (that folder,
    `<work_dir>/model`).

    The driver writes it: `work_dir` is on the driver's disk, where local-mode training reads it.
    A Spark write would leave each executor's part files on that executor's host on a multi-host
    cluster. The fold is collected as Arrow (12 bytes a rating), no more than training loads.
    """
    import pyarrow.parquet as pq

    train_path = os.path.join(work_dir, "train")
    shutil.rmtree(train_path, ignore_errors=True)
    os.makedirs(train_path)
    pq.write_table(
        ratings.select(C.USER_ID, C.MOVIE_ID, C.RATING).toArrow(), os.path.join(train_path, "ratings.parquet")
    )
    return train_path, os.path.join(work_dir, "model")


def run_on_distributor(
    train_fn: Callable[..., dict[str, Any]], *args: Any, num_processes: int
) -> dict[str, Any]:
    """`train_fn(*args)` through `TorchDistributor`; its info plus `distributor_seconds`."""
    import torch
    from pyspark.ml.torch.distributor import TorchDistributor

    distributor = TorchDistributor(
        num_processes=num_processes, local_mode=True, use_gpu=torch.cuda.is_available()
    )
    started = time.perf_counter()
    info = distributor.run(train_fn, *args)
    return {**info, "distributor_seconds": time.perf_counter() - started}
