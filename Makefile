# `make demo` and `make test` each set up .venv on first use (a few minutes), then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo-output

.PHONY: venv test lint format docs demo bench clean browser viewer

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
# PyRadiomics (the radiomics extra) builds from its source package against numpy and versioneer,
# which it does not declare: install those first, then it, at the extra's pin, without build isolation.
	$(BIN)/python -m pip install --quiet 'numpy>=1.26' versioneer setuptools wheel
	$(BIN)/python -m pip install --quiet --no-build-isolation 'pyradiomics==3.0.1'
# deepbet (46 MB, the fast brain-extraction network) too, so that its strip is tested; HD-BET (330 MB) is left out.
	$(BIN)/python -m pip install --quiet -e '.[radiomics,test,imagenet,deepbet,docs]'
	touch $(STAMP)

test: $(STAMP) browser viewer lint docs
	$(BIN)/python -m pytest -q

# The code is as `ruff format` writes it (pyproject's [tool.ruff]; `make format` rewrites it so), and pyflakes
# finds no unused or undefined name.
lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks docs
	$(BIN)/ruff check src tests benchmarks docs

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks docs

# The documentation site (mkdocs.yml, docs/) into site/. --strict turns every warning into an error, and mkdocs.yml's
# validation makes a link to a missing page or file, a missing anchor and a page left out of the nav warnings.
# NO_MKDOCS_2_WARNING quiets the theme's notice about its end of life, printed at every build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The browser tests of `glioscope serve` drive Debian's chromium; as root with apt-get it is installed,
# elsewhere they skip and say why.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and chromium-driver for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "note: chromium could not be installed; the browser tests will skip"; \
	else echo "note: no chromium/chromedriver (apt-get install chromium chromium-driver); the browser tests will skip"; fi

# NiiVue for `glioscope serve`'s Predict page: npm's tarball of @niivue/niivue, checked against its pinned sha512,
# its one bundle written to src/glioscope/serve/static/vendor/niivue/ (git-ignored). The standard library only, so
# `pip install -e .` users run it too; offline, it says so and the app keeps its canvas viewer.
viewer:
	$(PYTHON) src/glioscope/serve/vendor.py --if-reachable

demo: $(STAMP) viewer
	$(BIN)/glioscope demo --out $(DEMO_DIR)

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_speed.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/train_throughput.py --3d
	$(BIN)/python benchmarks/augment3d_cost.py
	$(BIN)/python benchmarks/optimizer_step.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache site
