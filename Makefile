# Every target sets up what it needs from nothing: a venv in .venv with the package and its tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: all serve test lint typecheck unit fuzz bench soak clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,interop]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/dapi-mock serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check mockserver contracts tests benchmarks
	$(BIN)/ruff format --check mockserver contracts tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck unit

# Longer property runs: more examples, not part of `make test`.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=dev $(BIN)/pytest tests/property $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info reports
