# Two commands on a fresh machine:  make demo  (the whole stack on embedded defaults)
#                                   make test  (lint + the full test suite)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint install clean

$(BIN)/hematovision: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/hematovision

# The demo lives in devkit/ (test support, not shipped), so it runs from the checkout.
demo: install
	$(BIN)/python -m devkit demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
