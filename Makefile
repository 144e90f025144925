# Quick start:  make demo   (set up .venv, generate the demo data, run the demo)
#               make test   (set up .venv, run the test suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo pair test venv lock benchmark benchmarks benchmarks-small eolearn-venv clean browser desktop-tools notebooks stackstac-env

venv: $(STAMP)

# Install exactly the versions in requirements.lock (the ones the test suite ran with).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test]"
	touch $(STAMP)

data/demo/.complete: $(STAMP) $(wildcard pipeline/demo/*.py)
	$(BIN)/midr demo-data --out data/demo --aoi aoi/demo_mine.geojson
	touch $@

demo: data/demo/.complete
	$(BIN)/midr run configs/demo.yaml

# A rapid event: two acquisitions around a dated (synthetic) tailings-dam failure, one period per scene
data/pair/.complete: $(STAMP) $(wildcard pipeline/demo/*.py)
	$(BIN)/midr demo-data --pair --out data/pair --aoi aoi/pair_mine.geojson
	touch $@

pair: data/pair/.complete
	$(BIN)/midr run configs/dam_failure_pair.yaml

# The suite in TEST_WORKERS processes (pytest-xdist), a test file per process at a time (module fixtures
# are shared within a file); TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: $(STAMP) browser desktop-tools stackstac-env
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

# Headless Chromium and its driver for tests/test_report_browser.py (Debian packages), unless on PATH.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	else echo "chromium and chromedriver are missing; as root run: apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver" >&2; exit 1; fi; \
	$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver

# QGIS 3 (with Debian's Python bindings), gdalinfo and GNU PSPP for tests/products/test_desktop_tools.py, which
# opens the run's outputs in them as a researcher would (headless), unless already there.
DESKTOP_TOOLS := qgis python3-qgis gdal-bin pspp
desktop-tools:
	@if /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1 && command -v gdalinfo >/dev/null 2>&1 \
	    && command -v pspp >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	else echo "QGIS, gdalinfo or PSPP is missing; as root run: apt-get update && apt-get install -y --no-install-recommends $(DESKTOP_TOOLS)" >&2; exit 1; fi; \
	$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DESKTOP_TOOLS)

# stackstac for tests/products/test_stac_readers.py: its last release (0.5.1) requires pandas < 3, the venv has
# pandas 3, so it lives apart, with pandas 2, in build/stackstac (put before the venv's packages on PYTHONPATH).
STACKSTAC := build/stackstac/.installed-stamp
$(STACKSTAC): $(STAMP)
	rm -rf build/stackstac
	$(BIN)/python -m pip install --quiet --no-deps --target build/stackstac stackstac==0.5.1 pandas==2.3.3 pytz==2025.2
	touch $@
stackstac-env: $(STACKSTAC)

# Run the notebooks on the demo (make demo first) and save them with their outputs, as the repository shows them.
notebooks: demo
	$(BIN)/python notebooks/execute.py notebooks/*.ipynb

benchmark: data/demo/.complete
	$(BIN)/python benchmarks/demo_run.py

# eo-learn, a peer framework and a benchmark baseline, in its own venv (it pins geopandas<1)
EOLEARN_STAMP := build/eolearn-venv/.installed-stamp
$(EOLEARN_STAMP): benchmarks/eolearn/requirements.txt benchmarks/eolearn/setup.sh
	PYTHON=$(PYTHON) bash benchmarks/eolearn/setup.sh
eolearn-venv: $(EOLEARN_STAMP)

# Per-stage throughput, 1 vs 2 workers on four AOIs, pipeline vs eager script vs eo-learn (benchmarks/README.md)
BENCH_ARGS ?= --size 2000 --dates 20 --years 5
benchmarks: $(STAMP) $(EOLEARN_STAMP)
	$(BIN)/python benchmarks/stage_throughput.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/workers_speedup.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/compare_eager.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/ingest_memory.py

benchmarks-small:
	$(MAKE) benchmarks BENCH_ARGS="--size 500 --dates 8 --years 4"

# Re-pin after changing dependencies in pyproject.toml: resolves into a scratch venv, writes the lock.
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet --upgrade pip
	build/lock-venv/bin/python -m pip install --quiet ".[test,notebook]"
	build/lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^midr-pipeline' > requirements.lock

clean:
	rm -rf $(VENV) build data/demo
