# byoc.certificates — every target sets itself up first (scripts/bootstrap.sh is idempotent and fast).
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

REPO     := $(CURDIR)
VENV     := $(REPO)/.venv
BIN      := $(VENV)/bin
BUILD    := $(REPO)/.build
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(BUILD)/dev:$(BUILD)/collections
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export ANSIBLE_LOCAL_TEMP := $(BUILD)/ansible-tmp
export PYTHONDONTWRITEBYTECODE := 1
# The test tree for ansible-test must sit at .../ansible_collections/byoc/certificates.

LAB_DIR  ?= $(REPO)/.lab

.PHONY: help setup test unit sanity ansible-units lint integration molecule release collection docs bench-ci bench demo lab-up lab-down clean

help:
	@echo "make demo   - set up, start the lab, run the demo, print the report, stop the lab"
	@echo "make test   - set up and run every test layer (unit, sanity, ansible-test units, lint, integration, molecule, bench)"
	@echo "make bench  - the fleet benchmark: rotate.yml at N=10/50/200 against certbot and lego (docs/performance.md)"

setup:
	@bash scripts/bootstrap.sh

test: setup
	@bash scripts/run-tests.sh

unit: setup
	@bash scripts/run-tests.sh unit

sanity: setup
	@bash scripts/run-tests.sh sanity

ansible-units: setup
	@bash scripts/run-tests.sh ansible-units

lint: setup
	@bash scripts/run-tests.sh lint

integration: setup
	@bash scripts/run-tests.sh integration

molecule: setup
	@bash scripts/run-tests.sh molecule

release: setup
	@bash scripts/run-tests.sh release

collection: setup
	@bash scripts/release.sh collection

docs: setup
	@bash scripts/release.sh docs

bench-ci: setup
	@bash scripts/run-tests.sh bench

# The fleet benchmark (tests/bench/fleet_bench.py, docs/performance.md): N = 10, 50, 200; certbot and lego at 10.
bench: setup
	@HOME=$(BUILD)/home $(BIN)/python tests/bench/fleet_bench.py $(BENCH_ARGS)

demo: setup
	@bash scripts/demo.sh

lab-up: setup
	@$(BIN)/python tests/lab/lab.py up --dir $(LAB_DIR)

lab-down:
	@$(BIN)/python tests/lab/lab.py down --dir $(LAB_DIR)

clean:
	rm -rf $(BUILD)/ansible-tmp tests/output
