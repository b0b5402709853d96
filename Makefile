# lensflow: `make demo` runs the pipeline on the local stack, `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
export AWS_EC2_METADATA_DISABLED := true
# Node 22 LTS from npm's `node` package (package.json pins it): every node, npx and the worker use it.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

STACK := setup/stack.sh
LOCAL_ENV := set -a; . .lensflow/local.env; set +a
TS_SOURCES := $(shell find src -name '*.ts') tsconfig.json tsconfig.build.json package-lock.json
PY_PACKAGE := $(shell find spark/lensflow_spark -name '*.py' -o -name '*.json')

.PHONY: help setup build up down status demo test check typecheck lint jest pytest contracts diagram clean record-histories

help:
	@echo "make demo   - install what is missing, start the local stack, run the pipeline, print the result"
	@echo "make test   - install what is missing, start the stack, typecheck + lint + jest + pytest, stop the stack"
	@echo "make up | down | status - the local stack (Temporal + Web UI, S3 server, worker)"

setup:
	@bash setup/install.sh

dist/.built: $(TS_SOURCES) $(PY_PACKAGE) spark/build_zip.py
	@npx tsc -p tsconfig.build.json
	@.lensflow/venv/bin/python spark/build_zip.py spark/lensflow_spark dist/spark/lensflow_spark.zip
	@touch $@

build: setup
	@ln -sfn "$$(sed -n 's/^LENSFLOW_VENV=//p' .lensflow/tools.env)" .lensflow/venv
	@$(MAKE) --no-print-directory dist/.built

up: build
	@bash $(STACK) up

down:
	@bash $(STACK) down

status:
	@bash $(STACK) status

# The demo searches plain ALS and every model family, 6 points each, on 2 CV folds (config/demo-grid.json).
DEMO_CONFIG = node -p 'JSON.stringify(require("./config/demo-grid.json").$(1))'
demo: up
	@$(LOCAL_ENV); node dist/cli/main.js run --dataset $${LENSFLOW_DATASET:-ml-latest-small} \
	  --grid "$$($(call DEMO_CONFIG,grid))" --families "$$($(call DEMO_CONFIG,families))" \
	  --split "$$($(call DEMO_CONFIG,split))"

# The stack starts while typecheck and lint run (they need none of it; jest waits for it). It goes
# down whether the checks pass or not; the exit code is the checks'.
UP_RC := .lensflow/run/make-test-up.rc
test: build
	@rm -f $(UP_RC); mkdir -p .lensflow/run .lensflow/logs; \
	{ up=0; bash $(STACK) up > .lensflow/logs/make-test-up.log 2>&1 || up=$$?; echo $$up > $(UP_RC); } & \
	rc=0; $(MAKE) --no-print-directory check STACK_STARTING=1 || rc=$$?; wait; bash $(STACK) down; exit $$rc

# Every suite runs even when one before it fails (a lint error must not hide a failing pytest); the
# summary lists each suite's outcome and the exit code is non-zero when any failed. Under `make
# test` the suites that need the stack first wait for its start-up and fail if it failed.
# pytest runs beside jest (jest mostly waits on Temporal and the warm engine, pytest has a local
# Spark of its own), its output kept in a log that is printed after jest's: 1964 s against 2186 s
# one after the other on a quiet clean clone (bench/results/test-time.md). PYTEST_BESIDE= (empty)
# runs them one after the other.
SUITES := typecheck lint jest pytest
PYTEST_BESIDE ?= 1
PYTEST_LOG := .lensflow/logs/make-check-pytest.log
check:
	@failed=""; \
	run_suite() { local start=$$(date +%s) rc=0; $(MAKE) --no-print-directory $$1 || rc=$$?; \
	  echo "check: $$1 took $$(( $$(date +%s) - start )) s"; return $$rc; }; \
	for suite in typecheck lint; do run_suite $$suite || failed="$$failed $$suite"; done; \
	stack=0; if [ -n "$(STACK_STARTING)" ]; then \
	  while [ ! -f $(UP_RC) ]; do sleep 0.5; done; \
	  cat .lensflow/logs/make-test-up.log; stack=$$(cat $(UP_RC)); \
	fi; \
	if [ "$$stack" != 0 ]; then failed="$$failed jest pytest"; \
	elif [ -n "$(PYTEST_BESIDE)" ]; then \
	  mkdir -p $$(dirname $(PYTEST_LOG)); \
	  { rc=0; run_suite pytest > $(PYTEST_LOG) 2>&1 || rc=$$?; echo $$rc > $(PYTEST_LOG).rc; } & \
	  run_suite jest || failed="$$failed jest"; \
	  wait $$!; echo "--- pytest, which ran beside jest ($(PYTEST_LOG)) ---"; cat $(PYTEST_LOG); \
	  [ "$$(cat $(PYTEST_LOG).rc)" = 0 ] || failed="$$failed pytest"; \
	else \
	  for suite in jest pytest; do run_suite $$suite || failed="$$failed $$suite"; done; \
	fi; \
	echo "check summary:"; for suite in $(SUITES); do \
	  case " $$failed " in *" $$suite "*) echo "  $$suite: FAILED";; *) echo "  $$suite: passed";; esac; \
	done; \
	test -z "$$failed"

typecheck:
	npx tsc -p tsconfig.json --noEmit

# All three linters run, whichever fails.
lint:
	@rc=0; \
	npx eslint . || rc=1; \
	.lensflow/venv/bin/ruff check --config spark/pyproject.toml spark bench setup || rc=1; \
	.lensflow/venv/bin/ruff format --check --config spark/pyproject.toml spark bench setup || rc=1; \
	exit $$rc

jest:
	@$(LOCAL_ENV); npx jest

# The slowest tests are listed at the end: where the suite's time goes (bench/results/test-time.md).
pytest:
	@$(LOCAL_ENV); cd spark && PYTHONPATH=. ../.lensflow/venv/bin/python -m pytest --durations=25

# Re-records test/histories/*.json (the replay test's input) from small real runs on the running
# stack (`make up` first; minutes when the machine is quiet): after a workflow change, then commit
# them. RECORD=EMR (or RECORD=local) records only that part.
record-histories: build
	@$(LOCAL_ENV); npx jest --testMatch '**/test/histories/record.ts' $(if $(RECORD),-t '$(RECORD)')

contracts:
	npx tsc -p tsconfig.build.json && node dist/contracts/exportSchemas.js

# The README's architecture diagram, from its Graphviz source (graphviz comes from Debian via setup).
diagram:
	dot -Tpng -Gdpi=110 resources/architecture.dot -o resources/architecture_diagram.png

clean:
	rm -rf dist

# A standalone Spark cluster on 127.0.0.1 (one master, two 1-core/2g workers) from Spark's own scripts.
# LENSFLOW_CLUSTER_PORT / LENSFLOW_CLUSTER_UI_PORT move it; jobs target it with LENSFLOW_SPARK_MASTER.
CLUSTER := setup/cluster.sh
.PHONY: cluster-up cluster-down cluster-test

cluster-up: build
	@bash $(CLUSTER) up

cluster-down:
	@bash $(CLUSTER) down

# The pipeline on a cluster of its own (master + two workers on free ports), to Completed; part of
# `make test` too. Needs the local stack (`make up`): Temporal and S3.
cluster-test: build
	@$(LOCAL_ENV); npx jest test/cluster.e2e.test.ts
