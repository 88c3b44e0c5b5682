# `make demo` and `make test` each set up .venv on first use (a few minutes), then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo-output

.PHONY: venv test demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/glioscope demo --out $(DEMO_DIR)

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_speed.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/train_throughput.py --3d
	$(BIN)/python benchmarks/augment3d_cost.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
