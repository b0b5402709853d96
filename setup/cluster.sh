#!/usr/bin/env bash
# A standalone Spark cluster on 127.0.0.1: one master and two workers, started with the pip-installed
# Spark's own sbin/spark-daemon.sh (the pip wheel ships no start-master.sh/start-worker.sh).
# State, pids, logs and executor work folders live under LENSFLOW_CLUSTER_STATE (.lensflow/cluster/).
# Usage: setup/cluster.sh up|down|status
# Settings (env): LENSFLOW_CLUSTER_PORT (master, default 7177), LENSFLOW_CLUSTER_UI_PORT (master UI,
# default 8180; workers use the next two), LENSFLOW_CLUSTER_WORKER_CORES (1), LENSFLOW_CLUSTER_WORKER_MEMORY (2g).
# Jobs target it with LENSFLOW_SPARK_MASTER=spark://127.0.0.1:<port> (printed by `up`).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.lensflow/venv
[[ -x $VENV/bin/python ]] || { echo "cluster: no venv at $VENV; run 'make build' first" >&2; exit 1; }
SPARK_HOME=$($VENV/bin/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
STATE=$(mkdir -p "${LENSFLOW_CLUSTER_STATE:-.lensflow/cluster}" && cd "${LENSFLOW_CLUSTER_STATE:-.lensflow/cluster}" && pwd)
PORT=${LENSFLOW_CLUSTER_PORT:-7177}
UI=${LENSFLOW_CLUSTER_UI_PORT:-8180}
MASTER=spark://127.0.0.1:$PORT
export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR=$STATE/logs SPARK_PID_DIR=$STATE/pids
export SPARK_IDENT_STRING=lensflow-$PORT PYSPARK_PYTHON=$PWD/$VENV/bin/python
# The s3a jars, so executors read and write s3a:// as the local jobs do.
if [[ -f .lensflow/local.env ]]; then
  jars=$(sed -n 's/^LENSFLOW_SPARK_JARS=//p' .lensflow/local.env)
  [[ -n $jars ]] && export SPARK_DAEMON_CLASSPATH="$jars/*"
fi
daemon() { "$SPARK_HOME/sbin/spark-daemon.sh" "$@"; }
MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker

case "${1:-}" in
  up)
    mkdir -p "$STATE/logs" "$STATE/pids" "$STATE/work"
    daemon start $MASTER_CLASS 1 --host 127.0.0.1 --port "$PORT" --webui-port "$UI" >/dev/null
    for i in 1 2; do
      daemon start $WORKER_CLASS "$i" --host 127.0.0.1 --webui-port $((UI + i)) \
        --cores "${LENSFLOW_CLUSTER_WORKER_CORES:-1}" --memory "${LENSFLOW_CLUSTER_WORKER_MEMORY:-2g}" \
        --work-dir "$STATE/work" "$MASTER" >/dev/null
    done
    # Up means both workers registered with the master (its UI's JSON lists them ALIVE).
    for _ in $(seq 60); do
      alive=$(curl -s "http://127.0.0.1:$UI/json/" | grep -o '"state" *: *"ALIVE"' | wc -l || true)
      [[ $alive -ge 2 ]] && { echo "cluster: up, LENSFLOW_SPARK_MASTER=$MASTER (UI http://127.0.0.1:$UI)"; exit 0; }
      sleep 2
    done
    echo "cluster: workers did not register within 120 s; logs in $STATE/logs" >&2; exit 1 ;;
  down)
    for i in 1 2; do daemon stop $WORKER_CLASS "$i" >/dev/null || true; done
    daemon stop $MASTER_CLASS 1 >/dev/null || true
    echo "cluster: down" ;;
  status)
    daemon status $MASTER_CLASS 1 || true
    for i in 1 2; do daemon status $WORKER_CLASS "$i" || true; done ;;
  *) echo "usage: setup/cluster.sh up|down|status" >&2; exit 2 ;;
esac
