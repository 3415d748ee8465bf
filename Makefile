# The two commands of the README: `make demo` (main job) and `make test` (whole suite).
# Each installs what it needs first (scripts/bootstrap.sh, re-run when its inputs change).
VENV := .venv
STAMP := $(VENV)/.bootstrapped

.PHONY: demo test test-fast bench lint clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $@

demo: $(STAMP)
	$(VENV)/bin/defa demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest

# The edit loop: everything but the tests marked slow (the long RTL regressions, the
# cycle-model runs, synthesis); builds are cached, so a rerun rebuilds only what changed.
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow"

bench: $(STAMP)
	$(VENV)/bin/defa bench golden --json

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf build
