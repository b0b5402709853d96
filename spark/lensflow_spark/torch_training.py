"""Training a PyTorch family the Spark way, shared by every torch model: the fold as Parquet, and
one run of Spark's own `TorchDistributor` (local mode here, the same call on EMR; a GPU when torch
sees one)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame

from . import columns as C


def write_training_ratings(ratings: DataFrame, work_dir: str) -> tuple[str, str]:
    """Writes `ratings` as Parquet to `<work_dir>/train`; returns (that path, `<work_dir>/model`)."""
    train_path = os.path.join(work_dir, "train")
    ratings.select(C.USER_ID, C.MOVIE_ID, C.RATING).write.mode("overwrite").parquet(train_path)
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
