# Every target sets up what it needs from nothing: a venv in .venv with the package and its tools.
# `make serve` installs only what serving needs; the other targets install the kit and tools too.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MADE := $(VENV)/.made
SERVE_STAMP := $(VENV)/.serve-installed
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: all serve test lint typecheck unit fuzz bench profile tail soak image clean

all: test

# A venv made by Python 3.11+ with pip in it. $(MADE) is written last, so a try that stopped
# halfway (no ensurepip, Ctrl-C, a full disk) leaves no stamp and the next try starts afresh.
$(MADE):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "dapi-mock needs Python 3.11 or newer; PYTHON=$(PYTHON) is $$($(PYTHON) -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo 'not found')." >&2; \
	  echo "Run with a newer one, e.g.: make $(or $(MAKECMDGOALS),test) PYTHON=python3.11" >&2; \
	  exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }
	touch $@

$(SERVE_STAMP): pyproject.toml $(MADE)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml $(MADE)
	$(BIN)/python -m pip install --quiet -e '.[kit,dev,interop]'
	touch $@

serve: $(SERVE_STAMP)
	$(BIN)/dapi-mock serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check mockserver contracts tests benchmarks
	$(BIN)/ruff format --check mockserver contracts tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The journal page's tests need a real headless Chromium: installed here where apt-get is (a
# broken install fails the target); where it is not, those tests skip and say why.
unit: $(STAMP) examples/ccxt-node/node_modules
	command -v chromium >/dev/null || ! command -v apt-get >/dev/null || \
		(apt-get update && apt-get install -y chromium)
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -n 2 $(PYTEST_ARGS)

# The README's Node client (ccxt from npm) for its fuzz-client test; without npm it is skipped.
examples/ccxt-node/node_modules: examples/ccxt-node/package-lock.json
	if command -v npm >/dev/null; then cd examples/ccxt-node && npm ci --no-audit --no-fund; fi

test: lint typecheck unit

# Longer property runs: more examples, not part of `make test`; verify-server on 20 seeds at
# 100 examples each against a mock without a weight limit, so pacing does not dominate.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=dev $(BIN)/pytest tests/property tests/contracts/test_verify_determinism.py $(PYTEST_ARGS)

# Served mock vs a trivial Flask route on the same server; wrk from Debian (machines run as root).
BENCH_ARGS ?=
PROFILE_ARGS ?=
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# Where a served signed leverage change spends its time: py-spy samples `serve` under wrk.
profile: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python benchmarks/profile_served.py $(PROFILE_ARGS)

# Every request's latency at concurrency 8 beside the CPU speed probe: the server's own
# tail apart from the stretches when the host slowed the machine.
tail: $(STAMP)
	$(BIN)/python benchmarks/tail.py $(TAIL_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info reports

# Opt-in, not part of `make test`: needs podman or docker and a base image with python 3.11+
# and pip that the engine has or can pull (BASE=python:3.12-slim, or a locally made one).
# podman keeps the HEALTHCHECK only in the docker image format. IMAGE_ARGS go to the build
# (e.g. --network host, or --isolation chroot where the engine cannot create cgroups).
ENGINE ?= $(shell command -v podman || command -v docker)
BASE ?= python:3.12-slim
IMAGE ?= dapi-mock
IMAGE_ARGS ?=
image:
	@test -n "$(ENGINE)" || { echo "make image needs podman or docker (apt-get install podman)" >&2; exit 1; }
	$(ENGINE) build $(if $(findstring podman,$(ENGINE)),--format docker) $(IMAGE_ARGS) \
	  --build-arg BASE=$(BASE) -t $(IMAGE) -f Containerfile .

# 60 s of mixed load on `dapi-mock serve`, sampling its RSS: does memory stay flat?
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --seconds 60
