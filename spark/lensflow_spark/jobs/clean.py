"""Job `clean`: raw MovieLens files -> canonical Parquet tables, quarantine and a result JSON.

Outputs under `output` (Parquet): `ratings/` (canonical ratings plus `rating_year`), `movies/`
(canonical movies with `year` and `genres`), `quarantine/ratings/` and `quarantine/movies/` (the
dropped rows, with `corrupt_record` and `reason`; see `lensflow_spark.clean` for the reasons and their
order). The result JSON is written last (by `runtime.execute`), after every table is committed; its counts
reconcile: raw = clean + Σ quarantined, per table.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from .. import columns as C
from ..clean import Cleaned, split_triaged, triage_movies, triage_ratings
from ..features import with_rating_year
from ..readers import dataset_spec

log = logging.getLogger("lensflow.clean")


def _write(cleaned: Cleaned, out: str, quarantine_out: str) -> None:
    cleaned.clean.write.mode("overwrite").parquet(out)
    cleaned.quarantined.write.mode("overwrite").parquet(quarantine_out)


def _counts(raw: DataFrame, triaged: DataFrame) -> dict[str, Any]:
    """Raw rows counted from the files themselves (a line scan, no parsing); clean and per-reason counts
    from the cached triaged table, so a row lost or doubled in between fails the reconciliation."""
    per_reason = {row[C.REASON]: row["count"] for row in triaged.groupBy(C.REASON).count().collect()}
    clean = per_reason.pop(None, 0)
    counts = {"raw": raw.count(), "clean": clean, "quarantined": dict(sorted(per_reason.items()))}
    if counts["raw"] != clean + sum(per_reason.values()):
        raise RuntimeError(f"counts do not reconcile: {counts}")
    return counts


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    """Cleans one staged release and returns the result document.

    Movies are cleaned first: ratings of movies that are not among the clean movies are quarantined
    as `unknown_movie`. Each triaged table is cached while both of its halves are written and
    counted, and released afterwards.
    """
    dataset = job_input["dataset"]
    spec = dataset_spec(dataset)
    raw = spec.read(spark, job_input["raw"])
    out = job_input["output"].rstrip("/")
    outputs = {"ratings": f"{out}/ratings", "movies": f"{out}/movies"}
    movies_triaged = triage_movies(raw.movies).cache()
    ratings_triaged: DataFrame | None = None
    try:
        movies = split_triaged(movies_triaged)
        _write(movies, outputs["movies"], f"{out}/quarantine/movies")
        ratings_triaged = triage_ratings(raw.ratings, movies.clean, spec.scale).cache()
        ratings = split_triaged(ratings_triaged)
        ratings = Cleaned(clean=with_rating_year(ratings.clean), quarantined=ratings.quarantined)
        _write(ratings, outputs["ratings"], f"{out}/quarantine/ratings")
        counts = {
            "ratings": _counts(raw.ratings, ratings_triaged),
            "movies": _counts(raw.movies, movies_triaged),
        }
    finally:
        movies_triaged.unpersist()
        if ratings_triaged is not None:
            ratings_triaged.unpersist()
    log.info("clean %s: %s", dataset, counts)
    return {"job": "clean", "dataset": dataset, "outputs": outputs, "counts": counts}
