"""The torch families train in `TorchDistributor`'s local mode, on the driver, from a Parquet copy
of the fold in a driver-local folder. On a multi-host cluster (EMR) only the driver can write
there: a Spark write would put each executor's part files on that executor's own disk (and the
commit would find none of them on the driver's). So the copy is collected and written by the
driver itself: one Parquet file, no Spark committer marker, every rating."""

from __future__ import annotations

import os

import pyarrow.parquet as pq

from lensflow_spark import columns as C
from lensflow_spark.torch_training import write_training_ratings


def test_training_ratings_are_written_by_the_driver_whole(spark, tmp_path):
    rows = [
        (u, m, float(1 + (u * m) % 5), 1_000_000 + u)
        for u in range(1, 40)
        for m in range(1, 30)
        if (u + m) % 3
    ]
    ratings = spark.createDataFrame(rows, [C.USER_ID, C.MOVIE_ID, C.RATING, "extra"]).repartition(4)
    train_path, model_dir = write_training_ratings(ratings, str(tmp_path))
    assert model_dir == os.path.join(str(tmp_path), "model")
    files = sorted(os.listdir(train_path))
    assert files == ["ratings.parquet"], f"expected one driver-written Parquet file, found {files}"
    table = pq.read_table(train_path).to_pandas()
    assert list(table.columns) == [C.USER_ID, C.MOVIE_ID, C.RATING]
    got = sorted(table.itertuples(index=False, name=None))
    assert got == sorted((u, m, r) for u, m, r, _ in rows)
