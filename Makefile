# The two commands of the README: `make demo` (main job) and `make test` (whole suite).
# Each installs what it needs first (scripts/bootstrap.sh, re-run when its inputs change).
VENV := .venv
STAMP := $(VENV)/.bootstrapped

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $@

demo: $(STAMP)
	$(VENV)/bin/defa demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/defa bench golden --json

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf build
