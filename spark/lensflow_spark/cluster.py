"""What a Spark session on a cluster needs that local mode has for free.

- The `lensflow_spark` package on the executors: their Python workers import it to run our UDFs
  (topn's blocked scoring). It is shipped as a zip of the driver's own copy (`addPyFile`), so
  driver and executors always run the same code, on this machine's standalone cluster
  (`make cluster-up`) as on a multi-node standalone or YARN cluster.
- Checkpoints: ALS checkpoints its lineage to a folder every executor must reach. The warm engine
  writes them under its state folder (LENSFLOW_STATE_DIR), which on one machine every executor
  shares; across nodes that folder must be a shared mount, or jobs take `hdfs://`/`s3a://`
  checkpoint URIs as EMR steps do.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

from pyspark.sql import SparkSession

PACKAGE = Path(__file__).resolve().parent


def is_cluster(master: str) -> bool:
    """True for a master whose executors run in other processes (`spark://...`, `yarn`)."""
    return not master.startswith("local")


def package_zip(folder: Path) -> Path:
    """The package as `<folder>/lensflow_spark.zip` (sources only, no bytecode caches)."""
    target = folder / f"{PACKAGE.name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PACKAGE.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, Path(PACKAGE.name) / path.relative_to(PACKAGE))
    return target


def ship_package(spark: SparkSession) -> None:
    """Adds the package to the executors' Python path, once per SparkContext."""
    sc = spark.sparkContext
    if getattr(sc, "_lensflow_shipped", False):
        return
    # One folder per driver process: a second zip of the same name at another path is refused.
    folder = Path(tempfile.gettempdir()) / f"lensflow-pyfiles-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    sc.addPyFile(str(package_zip(folder)))
    sc._lensflow_shipped = True  # type: ignore[attr-defined]
