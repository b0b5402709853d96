#!/usr/bin/env bash
# The local stack: Temporal dev server (+ Web UI), versitygw (S3 on a POSIX folder), the lensflow
# worker and the warm Spark engine (a Python worker holding one SparkSession), all bound to
# 127.0.0.1, state under .lensflow/.
#   stack.sh up      start what is not running (the workers are always restarted, to pick up new code)
#   stack.sh down    stop all four
#   stack.sh status  say what runs
# Ports: LENSFLOW_TEMPORAL_PORT (7233), LENSFLOW_UI_PORT (8233), LENSFLOW_S3_PORT (7070).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=$ROOT/.lensflow
RUN=$STATE/run LOGS=$STATE/logs
TEMPORAL_PORT=${LENSFLOW_TEMPORAL_PORT:-7233}
UI_PORT=${LENSFLOW_UI_PORT:-8233}
S3_PORT=${LENSFLOW_S3_PORT:-7070}
BUCKET=${LENSFLOW_BUCKET:-lensflow}
mkdir -p "$RUN" "$LOGS" "$STATE/temporal" "$STATE/s3"

say() { printf 'stack: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

alive() { local pid; pid=$(cat "$RUN/$1.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 4))); do
    "$@" >/dev/null 2>&1 && return 0
    alive "$name" || die "$name exited during start-up; see $LOGS/$name.log"
    sleep 0.25
  done
  die "$name did not become ready in ${secs}s; see $LOGS/$name.log"
}
start() { # name, ports..., --, command...
  local name=$1; shift
  local ports=()
  while [ "$1" != "--" ]; do ports+=("$1"); shift; done; shift
  if alive "$name"; then say "$name already running"; return 0; fi
  for p in "${ports[@]}"; do
    port_busy "$p" && die "port $p on 127.0.0.1 is taken by another process (needed by $name): stop it, or choose another port with LENSFLOW_TEMPORAL_PORT / LENSFLOW_UI_PORT / LENSFLOW_S3_PORT"
  done
  # setsid: a process group of its own, so `down` stops the service and everything it started.
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}
stop() {
  local name=$1 pid
  alive "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid=$(cat "$RUN/$name.pid")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"; say "$name stopped"
}

write_env() {
  [ -f .lensflow/tools.env ] || die "tools are not installed: run \`make setup\`"
  # Credentials of the local S3 server: generated once, kept out of git, never printed.
  if [ ! -f "$STATE/credentials.env" ]; then
    (umask 077; {
      echo "AWS_ACCESS_KEY_ID=lensflow$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
      echo "AWS_SECRET_ACCESS_KEY=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    } > "$STATE/credentials.env")
  fi
  (umask 077; {
    echo "# lensflow local stack: source with \`set -a; . .lensflow/local.env; set +a\`"
    cat .lensflow/tools.env
    cat "$STATE/credentials.env"
    echo "AWS_REGION=us-east-1"
    echo "AWS_DEFAULT_REGION=us-east-1"
    echo "AWS_EC2_METADATA_DISABLED=true"
    echo "AWS_ENDPOINT_URL_S3=http://127.0.0.1:$S3_PORT"
    echo "LENSFLOW_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
    echo "LENSFLOW_BUCKET=$BUCKET"
    echo "TEMPORAL_ADDRESS=127.0.0.1:$TEMPORAL_PORT"
    echo "LENSFLOW_WEB_UI_URL=http://127.0.0.1:$UI_PORT"
    if [ -n "${LENSFLOW_DATA_DIR:-}" ]; then echo "LENSFLOW_DATA_DIR=$(cd "$LENSFLOW_DATA_DIR" && pwd)"; fi
  } > "$STATE/local.env.tmp"); mv "$STATE/local.env.tmp" "$STATE/local.env"
}

up() {
  write_env
  set -a; . "$STATE/local.env"; set +a
  start temporal "$TEMPORAL_PORT" "$UI_PORT" -- "$LENSFLOW_TEMPORAL_CLI" server start-dev \
    --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-ip 127.0.0.1 --ui-port "$UI_PORT" \
    --db-filename "$STATE/temporal/temporal.db" --log-level warn --ui-disable-news-fetch
  ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
    start versitygw "$S3_PORT" -- "$LENSFLOW_VERSITYGW" --port "127.0.0.1:$S3_PORT" --region us-east-1 \
    posix "$STATE/s3"
  wait_for temporal 60 "$LENSFLOW_TEMPORAL_CLI" operator cluster health --address "$TEMPORAL_ADDRESS"
  # The Web UI filters runs by these (the workflow upserts them); registered once per database.
  local attrs; attrs=$("$LENSFLOW_TEMPORAL_CLI" operator search-attribute list --address "$TEMPORAL_ADDRESS")
  for attr in LensflowDataset LensflowStatus; do
    grep -qw "$attr" <<<"$attrs" || "$LENSFLOW_TEMPORAL_CLI" operator search-attribute create \
      --address "$TEMPORAL_ADDRESS" --name "$attr" --type Keyword >/dev/null
  done
  wait_for versitygw 30 "$LENSFLOW_VENV/bin/python" -c "
import boto3
s3 = boto3.client('s3', endpoint_url='$LENSFLOW_S3_ENDPOINT')
if '$BUCKET' not in [b['Name'] for b in s3.list_buckets()['Buckets']]:
    s3.create_bucket(Bucket='$BUCKET')"
  [ -f dist/workers/main.js ] || die "the worker is not built: run \`make build\`"
  stop worker >/dev/null 2>&1 || true
  mv -f "$LOGS/worker.log" "$LOGS/worker.log.1" 2>/dev/null || true
  start worker -- node dist/workers/main.js
  start_spark_worker
  wait_for worker 60 grep -q "Worker state changed.*RUNNING" "$LOGS/worker.log"
  wait_for spark-worker 180 grep -q "spark worker ready" "$LOGS/spark-worker.log"
  say "up: Temporal 127.0.0.1:$TEMPORAL_PORT, Web UI $LENSFLOW_WEB_UI_URL, S3 $LENSFLOW_S3_ENDPOINT (bucket $BUCKET), workers on task queues lensflow and lensflow-spark"
  say "env for other tools: .lensflow/local.env"
}

# The warm Spark engine: its JVM starts once here, and every local Spark job runs in it.
start_spark_worker() {
  stop spark-worker >/dev/null 2>&1 || true
  mv -f "$LOGS/spark-worker.log" "$LOGS/spark-worker.log.1" 2>/dev/null || true
  PYTHONPATH=$ROOT/spark SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON=$LENSFLOW_VENV/bin/python LENSFLOW_STATE_DIR=$STATE \
    start spark-worker -- "$LENSFLOW_VENV/bin/python" -m lensflow_spark.worker
}

down() { stop spark-worker; stop worker; stop versitygw; stop temporal; }

status() {
  for s in temporal versitygw worker spark-worker; do
    if alive "$s"; then say "$s running (pid $(cat "$RUN/$s.pid"))"; else say "$s stopped"; fi
  done
}

# `spark-worker`: (re)start the warm Spark engine alone (the tests kill it to check recovery).
case "${1:-}" in
  up) up ;; down) down ;; status) status ;;
  spark-worker) [ -f "$STATE/local.env" ] || die "the stack is not up: run \`make up\`"
    set -a; . "$STATE/local.env"; set +a; start_spark_worker
    wait_for spark-worker 180 grep -q "spark worker ready" "$LOGS/spark-worker.log" ;;
  *) echo "usage: $0 up|down|status|spark-worker" >&2; exit 2 ;;
esac
