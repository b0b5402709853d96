"""Job `report`: the plots as PNG files and one self-contained HTML report of the run.

Reads the clean counts, the analysis summary and user-activity table, every grid point's result,
the model families' points when searched, and the evaluation; writes `<output>/<figure>.png` and
`<output>/report.html`.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from ..analysis import REPORT_NAME
from ..plots import figure_png
from ..report import grid_rows, render_report, report_figures
from ..storage import list_files, read_json, write_bytes


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    summary = read_json(spark, job_input["analysis"])
    clean = read_json(spark, job_input["clean"])
    grid = grid_rows(read_json(spark, uri) for uri in list_files(spark, job_input["grid"], ".json"))
    evaluation = read_json(spark, job_input["evaluation"])["models"]
    families = (
        [read_json(spark, uri) for uri in list_files(spark, job_input["families"], ".json")]
        if job_input.get("families")
        else None
    )
    activity_uri = job_input["analysis"].rsplit("/", 1)[0] + "/user_activity"
    user_activity = spark.read.parquet(activity_uri).toPandas()

    out = job_input["output"].rstrip("/")
    images = {
        name: figure_png(fig)
        for name, fig in report_figures(summary, grid, evaluation, user_activity).items()
    }
    plots = {}
    for name, png in images.items():
        plots[name] = f"{out}/{name}.png"
        write_bytes(spark, plots[name], png)
    html_text = render_report(
        summary,
        grid,
        evaluation,
        clean,
        images,
        title=f"lensflow run report: {job_input['dataset']}",
        families=families,
    )
    report_uri = f"{out}/{REPORT_NAME}"
    write_bytes(spark, report_uri, html_text.encode("utf-8"))
    return {"job": "report", "reportUri": report_uri, "plots": plots}
