#!/bin/bash
# EMR bootstrap action: builds the lensflow jobs' Python environment on this node.
#
#   emr-bootstrap-venv.sh <requirements s3 uri> <constraints s3 uri> <venv dir>
#
# Runs on every node before Spark starts (bootstrap actions run as the hadoop user, with sudo).
# pyspark is left out: the steps must use the cluster's own Spark, not a second copy. The
# constraints pin every transitive dependency, so all nodes get the same versions as CI.
# The cluster's spark-defaults point spark.pyspark.python at <venv dir>/bin/python.
set -euo pipefail

if [ "$#" -ne 3 ]; then
  echo "usage: $0 <requirements s3 uri> <constraints s3 uri> <venv dir>" >&2
  exit 2
fi
requirements_uri=$1
constraints_uri=$2
venv=$3

# The jobs need Python >= 3.11 (numpy 2.3); emr-spark-8.x ships it as python3.11 or python3.
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null \
    && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    python=$(command -v "$candidate")
    break
  fi
done
if [ -z "$python" ]; then
  echo "no Python >= 3.11 on this node: use an emr-spark-8.x release label" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aws s3 cp --only-show-errors "$requirements_uri" "$work/requirements.txt"
aws s3 cp --only-show-errors "$constraints_uri" "$work/constraints.txt"
grep -viE '^[[:space:]]*(pyspark|py4j)([[:space:]=<>!~;[]|$)' "$work/requirements.txt" > "$work/node-requirements.txt"
grep -viE '^[[:space:]]*(pyspark|py4j)([[:space:]=<>!~;[]|$)' "$work/constraints.txt" > "$work/node-constraints.txt"

sudo mkdir -p "$(dirname "$venv")"
sudo "$python" -m venv "$venv"
sudo "$venv/bin/python" -m pip install --quiet --no-cache-dir --upgrade pip
sudo "$venv/bin/python" -m pip install --quiet --no-cache-dir \
  -r "$work/node-requirements.txt" -c "$work/node-constraints.txt"
# A node whose venv cannot import the jobs' dependencies must fail its bootstrap, not its steps.
"$venv/bin/python" -c 'import jsonschema, numpy, pandas, pyarrow, matplotlib, seaborn'
echo "lensflow venv ready at $venv ($("$venv/bin/python" --version))"
