# Two entry points: `make demo` (the main job on built-in synthetic data) and `make test`.
# Both create .venv on first use and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m htr_ssl.cli.demo

test: $(STAMP)
	$(BIN)/ruff check htr_ssl tests benchmarks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check htr_ssl tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/synthetic_throughput.py

clean:
	rm -rf $(VENV) runs outputs datasets/synthetic
