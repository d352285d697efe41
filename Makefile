# Quote: two set-up commands. Both create .venv when missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TINY ?= .quote/tiny-model
STAMP := $(VENV)/.installed-dev
STAMP_RUN := $(VENV)/.installed

.PHONY: serve test lint typecheck docs clean tiny-model

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP_RUN): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e ".[dev]"
	touch $@ $(STAMP_RUN)

$(TINY)/config.json: $(STAMP_RUN)
	$(BIN)/quote tiny-model $(TINY)

tiny-model: $(TINY)/config.json

## make serve: install, build the embedded tiny model if missing, serve it on 127.0.0.1:8000
serve: $(STAMP_RUN) $(TINY)/config.json
	$(BIN)/quote serve --model $(TINY) $(SERVE_ARGS)

## make test: install with the dev extra and run the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

clean:
	rm -rf build dist site .pytest_cache .mypy_cache .ruff_cache .quote
