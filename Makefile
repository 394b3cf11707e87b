# ratesvc developer commands.  `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SIM    := packages/ratesvc-sim

.DEFAULT_GOAL := help

# The simulators ($(SIM): `ratesvc simulate`, `make demo`, the tests) are a package
# of their own so that the service's wheel and image do not carry them.
# requirements-dev.lock as constraints: the versions installed are the audited ones.
$(BIN)/ratesvc: pyproject.toml $(SIM)/pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements-dev.lock -e '.[dev]' -e $(SIM)
	touch $@

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'

.PHONY: install
install: $(BIN)/ratesvc ## make .venv and install ratesvc, its simulators and its dev tools

.PHONY: run
run: $(BIN)/ratesvc ## start ratesvc (embedded Redis/PostgreSQL unless RATESVC_*_URL are set)
	$(BIN)/ratesvc serve

.PHONY: demo
demo: $(BIN)/ratesvc ## start ratesvc against the upstream simulators (packages/ratesvc-sim)
	RATESVC_SIMULATE=1 $(BIN)/ratesvc serve

.PHONY: test
# Two workers, each a session with its own Redis and PostgreSQL; a module stays on one
# worker (its tests share one app). Most of the suite waits on real servers, not the CPU.
test: $(BIN)/ratesvc ## run the whole test suite (starts its own Redis and PostgreSQL)
	$(BIN)/pytest -n 2 --dist loadfile

.PHONY: lint
lint: $(BIN)/ratesvc ## ruff lint and format check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: lint-docker
lint-docker: $(BIN)/ratesvc ## lint Dockerfile, compose and deploy/ (hadolint; nginx -t, promtool when installed)
	VENV=$(VENV) scripts/lint-docker

.PHONY: audit
audit: $(BIN)/ratesvc ## check requirements.lock and requirements-dev.lock for known vulnerabilities (pip-audit)
	VENV=$(VENV) scripts/audit-deps

.PHONY: lock
lock: $(BIN)/ratesvc ## re-resolve both locks from pyproject.toml, then audit
	VENV=$(VENV) scripts/audit-deps --update

.PHONY: bench-smoke
bench-smoke: $(BIN)/ratesvc ## seconds of bench/http_bench.py, bench/slowloris.py, loadtest/run.py and bench/recovery.py, no thresholds
	$(BIN)/python -c "import locust, matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet -c requirements-dev.lock -e '.[load]'
	$(BIN)/python bench/http_bench.py --quick
	$(BIN)/python bench/slowloris.py --quick
	$(BIN)/python loadtest/run.py --quick
	$(BIN)/python bench/recovery.py --quick

.PHONY: fmt
fmt: $(BIN)/ratesvc ## format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
