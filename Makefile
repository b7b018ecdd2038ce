# Two commands on a fresh machine:  make demo  (the whole stack on embedded defaults)
#                                   make test  (lint + the full test suite)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint install clean lock audit

# Every dependency at the version and hashes of the lock file (requirements-dev.lock: the
# runtime's requirements.lock plus the tools); the project itself on top, without resolving.
$(BIN)/hematovision: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
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

# Re-resolve the lock files after changing pyproject.toml's dependencies (needs the index).
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
lock: install
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-dev.lock

# Known vulnerabilities of the locked runtime dependencies, where PyPI's database answers.
audit: install
	@if ! $(BIN)/python -c "import urllib.request as u; u.urlopen('https://pypi.org/pypi/pip/25.0/json', timeout=10)" 2>/dev/null; then \
		echo "audit: PyPI's vulnerability database is unreachable from here; nothing audited"; \
	else \
		$(BIN)/pip install --quiet pip-audit && \
		$(BIN)/pip-audit --strict --disable-pip --require-hashes -r requirements.lock; \
	fi

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
