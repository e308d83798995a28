# Two entry points, each self-contained on a fresh clone (needs only Python 3.11 and make):
#   make demo   install into .venv and run the main job (vinfo reproduce --preset tiny) on the
#               built-in synthetic data; results in results/tiny/
#   make test   install into .venv, lint, and run the whole test suite (slow tests included)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vinfo reproduce --preset tiny --out results/tiny

lint: $(STAMP)
	$(BIN)/ruff check .

# pytest's exit code 5 means it collected no test: report it and fail, never pass silently.
test: lint
	@$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$status

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
