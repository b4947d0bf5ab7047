# runctl: every task a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# What running needs (both distributions, no dev tools), then everything tests and lint need on top.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
CLIENT_DIR := clients/python
NODE_STAMP := node_modules/.installed
TS_DIR := clients/typescript
TS_STAMP := $(TS_DIR)/node_modules/.installed
BROWSER_DIR := tests/browser
BROWSER_STAMP := $(BROWSER_DIR)/node_modules/.installed
CONSOLE_DIR := console
CONSOLE_STAMP := $(CONSOLE_DIR)/node_modules/.installed
# The console's bundle, built from console/ by `make generate` and committed.
CONSOLE_ASSETS := server/runctl_server/http/console_assets
BUF := node_modules/.bin/buf
# The runctl.v1 contract as declared stable: every later change must be compatible with it.
STABLE_CONTRACT := contract/runctl-v1.binpb
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run generate check-generated lint typecheck test bench breaking clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

# Two distributions, both editable: the client `runctl` (clients/python) first, since the server
# `runctl-server` (this folder) depends on it and adds its commands to the same `runctl` command.
$(RUN_STAMP): pyproject.toml $(CLIENT_DIR)/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# Left by the one-distribution layout: it would shadow the client's metadata wherever the
	# checkout is on sys.path (pytest, python -m).
	rm -rf runctl.egg-info
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '$(CLIENT_DIR)[yaml]'
	$(PY) -m pip install --quiet -e .
	touch $@

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e '.[dev,postgres]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(TS_STAMP): $(TS_DIR)/package.json $(TS_DIR)/package-lock.json
	npm ci --prefix $(TS_DIR) --no-audit --no-fund --loglevel=error
	touch $@

$(BROWSER_STAMP): $(BROWSER_DIR)/package.json $(BROWSER_DIR)/package-lock.json
	npm ci --prefix $(BROWSER_DIR) --no-audit --no-fund --loglevel=error
	touch $@

$(CONSOLE_STAMP): $(CONSOLE_DIR)/package.json $(CONSOLE_DIR)/package-lock.json
	npm ci --prefix $(CONSOLE_DIR) --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(NODE_STAMP) $(TS_STAMP) $(BROWSER_STAMP) $(CONSOLE_STAMP) ## Create .venv and install runctl and runctl-server (editable, with PostgreSQL support), the dev tools, buf, the TypeScript client, the console's build tools and the browser test's playwright-core

run: $(RUN_STAMP) ## Install only what running needs (client and server, no dev tools), then start the server: gRPC 127.0.0.1:50051, HTTP 127.0.0.1:3003, SQLite ./runctl.db
	$(VENV)/bin/runctl serve

generate: $(STAMP) $(NODE_STAMP) $(TS_STAMP) $(CONSOLE_STAMP) ## Regenerate the client code from proto/ and the console's bundle from console/
	PYTHON=$(PY) scripts/generate.sh
	npm run --silent --prefix $(CONSOLE_DIR) build
	$(PY) scripts/workflow_schema.py

check-generated: generate ## Fail if regenerating changed anything under clients/, the console's bundle or docs/workflow.schema.json
	@if [ -n "$$(git status --porcelain --untracked-files=all -- clients/ $(CONSOLE_ASSETS) docs/workflow.schema.json)" ]; then \
		git status --short -- clients/ $(CONSOLE_ASSETS) docs/workflow.schema.json; echo "generated code is stale: run 'make generate' and commit"; exit 1; fi

lint: check-generated typecheck ## Generated-code check, ruff, mypy, tsc, buf lint and buf breaking
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(BUF) lint
	$(BUF) format --diff --exit-code proto
	$(BUF) breaking proto --against $(STABLE_CONTRACT)

typecheck: $(STAMP) $(CONSOLE_STAMP) ## mypy --strict on hand-written code, tsc on the console's TypeScript
	$(VENV)/bin/mypy
	npm run --silent --prefix $(CONSOLE_DIR) typecheck

test: $(STAMP) $(NODE_STAMP) $(TS_STAMP) $(BROWSER_STAMP) ## Run the whole test suite (with CI=true, lint first)
	@if [ "$${CI:-}" = "true" ]; then $(MAKE) --no-print-directory lint; fi
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: $(STAMP) ## Run the benchmarks in bench/ and print their figures
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script; done

breaking: $(NODE_STAMP) ## buf breaking against the stable v1 contract (contract/runctl-v1.binpb); CI fails on any break
	$(BUF) breaking proto --against $(STABLE_CONTRACT)

clean: ## Remove the virtual environment, node_modules and caches
	rm -rf $(VENV) node_modules $(TS_DIR)/node_modules $(BROWSER_DIR)/node_modules $(CONSOLE_DIR)/node_modules .pytest_cache .mypy_cache .ruff_cache
