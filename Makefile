# Developer entry points. On a fresh Debian 12 machine (Python 3.11 + pip):
#   make demo   - create .venv, install bastion, run the demo
#   make test   - lint, typecheck, then the pytest suite in a throwaway PostgreSQL cluster

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
DEMO_ARGS ?=

.DEFAULT_GOAL := test
.PHONY: venv demo lint typecheck test clean

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/bootstrap
	PYTHON="$(PYTHON)" bash scripts/bootstrap

demo: venv
	$(VENV)/bin/bastion demo $(DEMO_ARGS)

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/pylint src/bastion
	$(VENV)/bin/lint-imports --no-cache

typecheck: venv
	$(VENV)/bin/mypy

test: venv lint typecheck
	bash scripts/test

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .bench-results
	rm -rf *.egg-info src/*.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
