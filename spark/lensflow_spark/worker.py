"""The warm local Spark engine: a Temporal worker holding ONE SparkSession for every job.

Each Spark job is an activity named after the job (`clean`, `als_point`, ...) on the task queue
`<LENSFLOW_TASK_QUEUE>-spark`; the TypeScript workflow keeps all orchestration and calls them by
name. An activity takes a `JobRequest` (contracts/jobInputs.ts): the job's input document and where
the run lives; it returns `{result, reused, durationSeconds}`.

- Idempotent: a valid result already at the result URI means the job is not run again.
- Concurrent activities share the session's cores through FAIR scheduler pools (one per thread).
- Cancel: the activity's Spark jobs carry its job tag, whose jobs are cancelled (again and again
  while the job's Python code keeps going) until the job returns; the activity ends cancelled, the
  session lives on. The tag is SparkContext's (`addJobTag`/`cancelJobsWithTag`), not
  `SparkSession.addTag`/`interruptTag`: in classic Spark a session tag reaches only SQL executions
  (not the RDD jobs ALS runs) and only the thread that added it can interrupt it, while a cancel
  comes from the monitor thread.
- Heartbeats every 2 s carry the Spark progress of the activity's jobs (jobs, stages, tasks done).
- A failing job fails the activity once, non-retryably, with the job's own Python error text.
- ALS checkpoints go to local disk, never through s3a.

Run: `python -m lensflow_spark.worker` with `.lensflow/local.env` in the environment (`make up`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import shutil
import signal
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Worker

from . import tables
from .contracts import ContractError, shared_fact, validate_result
from .jobs import runtime
from .session import local_session
from .storage import exists, read_json

log = logging.getLogger("lensflow.worker")

HEARTBEAT_SECONDS = 2.0
CANCEL_POLL_SECONDS = 0.25
ERROR_TAIL_CHARS = 8_000
RUN_LAYOUT = shared_fact("run-layout")
"""Where a run lives and where a job's result goes in it (`RUN_LAYOUT` of contracts/pipeline.ts)."""


def to_local(doc: Any) -> Any:
    """`s3://` as `s3a://` in every string of a document (what Hadoop's s3a filesystem reads)."""
    return _map_strings(doc, lambda s: s.replace("s3://", "s3a://"))


def from_local(doc: Any) -> Any:
    """The inverse of `to_local`: URIs a job reports come back in the pipeline's `s3://` form."""
    return _map_strings(doc, lambda s: s.replace("s3a://", "s3://"))


def _map_strings(doc: Any, fn) -> Any:
    if isinstance(doc, str):
        return fn(doc)
    if isinstance(doc, list):
        return [_map_strings(v, fn) for v in doc]
    if isinstance(doc, dict):
        return {k: _map_strings(v, fn) for k, v in doc.items()}
    return doc


def result_uri_of(request: dict[str, Any]) -> str:
    """Where a job's result goes: `runLayout(...).resultUri` of contracts/pipeline.ts, as `s3a://`."""
    run = RUN_LAYOUT["run"].format(prefix=request["prefix"], runId=request["runId"])
    return f"s3a://{request['bucket']}/{run}" + RUN_LAYOUT["result"].format(resultName=request["resultName"])


def spark_progress(spark: SparkSession, tag: str) -> dict[str, Any]:
    """Jobs, stages and tasks of the jobs with one job tag, as the status tracker knows them.

    A finished job's stages count as done even when skipped (their output was reused), so that
    done reaches total; only the tasks that ran or will run are counted.
    """
    tracker = spark.sparkContext.statusTracker()
    # PySpark's tracker has no lookup by tag; Scala's SparkStatusTracker does.
    ids = spark.sparkContext._jsc.sc().statusTracker().getJobIdsForTag(tag)
    jobs = [j for j in (tracker.getJobInfo(i) for i in ids) if j]
    stages = [
        (j.status == "SUCCEEDED", s) for j in jobs for s in (tracker.getStageInfo(i) for i in j.stageIds) if s
    ]
    return {
        "sparkJobs": {"done": sum(j.status == "SUCCEEDED" for j in jobs), "total": len(jobs)},
        "stages": {
            "done": sum(finished or s.numCompletedTasks >= s.numTasks for finished, s in stages),
            "total": len(stages),
        },
        "tasks": {
            "done": sum(s.numCompletedTasks for _, s in stages),
            "total": sum(s.numCompletedTasks if finished else s.numTasks for finished, s in stages),
        },
    }


class Engine:
    """The warm session and the job activities that run in it."""

    def __init__(self, spark: SparkSession, checkpoint_root: Path) -> None:
        self.spark = spark
        self.checkpoint_root = checkpoint_root

    def activities(self) -> list[Any]:
        return [self._activity(job) for job in runtime.JOBS]

    def _activity(self, job: str):
        def run_job(request: dict[str, Any]) -> dict[str, Any]:
            return self.run(job, request)

        run_job.__name__ = f"run_{job}"
        return activity.defn(name=job)(run_job)

    def previous_result(self, job: str, uri: str) -> dict[str, Any] | None:
        """A valid result already at `uri`, or None (absent, unreadable or breaking the contract)."""
        if not exists(self.spark, uri):
            return None
        try:
            return validate_result(job, read_json(self.spark, uri))
        except (ContractError, ValueError):  # a half-written or outdated result: run the job again
            return None

    def run(self, job: str, request: dict[str, Any]) -> dict[str, Any]:
        info = activity.info()
        started = time.monotonic()
        result_uri = result_uri_of(request)
        previous = self.previous_result(job, result_uri)
        if previous is not None:
            return {"result": from_local(previous), "reused": True, "durationSeconds": 0}

        job_input = to_local(request["input"])
        if "checkpoint" in job_input:
            # Locally ALS checkpoints go to local disk: through s3a they cost a PUT per block.
            job_input["checkpoint"] = (
                self.checkpoint_root / info.workflow_run_id / info.activity_id
            ).as_uri()
        # Spark refuses a tag with a comma.
        tag = f"lensflow:{info.workflow_id}/{info.activity_id}/{info.attempt}".replace(",", ";")
        sc = self.spark.sparkContext
        stop = threading.Event()
        monitor = threading.Thread(
            target=contextvars.copy_context().run, args=(self._monitor, tag, job, stop), daemon=True
        )
        failure: BaseException | None = None
        result: dict[str, Any] | None = None
        # The SDK raises CancelledError into this thread on cancel; inside a Py4J call that would
        # leave the thread's gateway connection mid-reply. Shielded, it is raised at the end of
        # the block instead, after the cancelled Spark jobs have returned.
        with activity.shield_thread_cancel_exception():
            sc.addJobTag(tag)
            sc.setInterruptOnCancel(True)
            sc.setJobDescription(f"lensflow {job} {info.activity_id}")
            sc.setLocalProperty("spark.scheduler.pool", threading.current_thread().name)
            monitor.start()
            try:
                result = runtime.execute(self.spark, job, job_input, result_uri)
            except Exception as err:  # noqa: BLE001 - reported below, with its traceback
                failure = err
                error_text = traceback.format_exc()[-ERROR_TAIL_CHARS:]
            finally:
                stop.set()
                monitor.join()
                sc.removeJobTag(tag)
                sc.setLocalProperty("spark.job.description", None)
                sc.setLocalProperty("spark.job.interruptOnCancel", None)
                sc.setLocalProperty("spark.scheduler.pool", None)
        if activity.is_cancelled():
            raise CancelledError("cancelled")
        if failure is not None:
            log.error("%s %s failed:\n%s", job, info.activity_id, error_text)
            kind = "InvalidInput" if isinstance(failure, ContractError) else "SparkJobFailed"
            raise ApplicationError(
                f"Spark job {job} ({info.activity_id}) failed:\n{error_text}", type=kind, non_retryable=True
            )
        return {"result": from_local(result), "reused": False, "durationSeconds": time.monotonic() - started}

    def _monitor(self, tag: str, job: str, stop: threading.Event) -> None:
        """Heartbeats Spark's progress; once cancelled, cancels the tag's jobs until the job returns."""
        last_beat = 0.0
        while not stop.wait(CANCEL_POLL_SECONDS):
            if activity.is_cancelled():
                self.spark.sparkContext.cancelJobsWithTag(tag)
            elif time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                try:
                    activity.heartbeat({"job": job, **spark_progress(self.spark, tag)})
                except Exception:  # noqa: BLE001 - a missed beat is not the job's failure
                    log.exception("heartbeat of %s failed", tag)


def engine_session(cores: int) -> SparkSession:
    """The warm session: all cores, FAIR pools, the s3a settings of `local_session`."""
    spark = local_session(
        "lensflow-engine",
        cores,
        fair=True,
        driver_memory=os.environ.get("LENSFLOW_SPARK_DRIVER_MEMORY", "2g"),
        # The console progress bar would fill the worker log; progress goes into heartbeats instead.
        extra={"spark.ui.showConsoleProgress": "false"},
    )
    spark.sparkContext.setLogLevel("WARN")
    return spark


async def serve() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = Path(os.environ.get("LENSFLOW_STATE_DIR", ".lensflow")).resolve()
    task_queue = f"{os.environ.get('LENSFLOW_TASK_QUEUE', 'lensflow')}-spark"
    slots = int(os.environ.get("LENSFLOW_SPARK_SLOTS", "4"))
    checkpoints = state / "spark-checkpoints"
    shutil.rmtree(checkpoints, ignore_errors=True)  # left by a previous worker; nothing reads them
    spark = engine_session(os.cpu_count() or 2)
    tables.enable(int(os.environ.get("LENSFLOW_SPARK_CACHED_TABLES", "16")))
    engine = Engine(spark, checkpoints)
    client = await Client.connect(
        os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
        namespace=os.environ.get("TEMPORAL_NAMESPACE", "default"),
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="lensflow-job") as pool:
        worker = Worker(
            client,
            task_queue=task_queue,
            activities=engine.activities(),
            activity_executor=pool,
            max_concurrent_activities=slots,
            # Each beat is sent at once: what lets a cancel reach the job within seconds.
            max_heartbeat_throttle_interval=timedelta(seconds=HEARTBEAT_SECONDS),
            graceful_shutdown_timeout=timedelta(seconds=5),
        )
        async with worker:
            log.info("lensflow spark worker ready on task queue %s (%d slots)", task_queue, slots)
            await stopping.wait()
    spark.stop()


if __name__ == "__main__":
    asyncio.run(serve())
