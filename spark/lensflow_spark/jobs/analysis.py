"""Job `analysis`: SparkSQL analyses of the clean tables, as Parquet tables plus a JSON summary.

Outputs under `output`: one Parquet folder per table of `analysis.TABLE_NAMES`, and `summary.json`.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from .. import tables
from ..analysis import SUMMARY_NAME, AnalysisConfig, analysis_tables, summarize
from ..storage import write_json


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    defaults = AnalysisConfig()
    config = AnalysisConfig(
        min_ratings=job_input.get("minRatings", defaults.min_ratings),
        prior_weight=job_input.get("priorWeight", defaults.prior_weight),
    )
    ratings = tables.read_parquet(spark, job_input["ratings"]).cache()
    movies = tables.read_parquet(spark, job_input["movies"]).cache()
    out = job_input["output"].rstrip("/")
    outputs = {}
    for name, table in analysis_tables(ratings, movies, config).items():
        outputs[name] = f"{out}/{name}"
        table.write.mode("overwrite").parquet(outputs[name])
    summary = summarize(ratings, movies, config)
    summary_uri = f"{out}/{SUMMARY_NAME}"
    write_json(spark, summary_uri, summary)
    return {"job": "analysis", "outputs": outputs, "summaryUri": summary_uri, "summary": summary}
