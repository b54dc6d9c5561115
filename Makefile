# paper-digest: `make demo` runs the main job on the embedded default, `make test` runs the suite.
# Both create .venv on first use; nothing else needs installing by hand.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test soak lint check clean

# Re-installs when pyproject.toml changes; the stamps keep repeat runs instant.
$(VENV)/.base: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) uninstall -y paper-digest >/dev/null 2>&1 || true  # the distribution's name before 0.11.1
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PIP) install -e '.[dev]'
	touch $@

DEMO := $(BIN)/digest --config examples/demo.toml

demo: $(VENV)/.base ## the whole daily job on the embedded default: dumps in, digests out into outbox/
	$(DEMO) ingest examples/dumps
	@echo
	$(DEMO) subscribers
	@echo
	$(DEMO) send

test: $(VENV)/.dev ## run the whole test suite, one worker per core
	$(BIN)/pytest -n auto

# By hand, not in CI (~15 min): 100 runs of `digest send` killed at points the SMTP sink chooses,
# and 100 SIGKILLs of `digest run` while its worker processes make digests. The tallies print at the end.
# Each test runs its 100 kills in one function, so the backstop timeout is raised from 300 s to an hour.
soak: $(VENV)/.dev ## the crash tests, 100 runs each
	CRASH_RUNS=100 CRASH_DAEMON_RUNS=100 $(BIN)/pytest -p no:xdist -s -q --timeout 3600 tests/test_crash.py

lint: $(VENV)/.dev ## ruff and mypy, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

clean:
	rm -rf $(VENV) var outbox .pytest_cache .mypy_cache .ruff_cache .hypothesis
