# Quick start:  make demo   (set up .venv, generate the demo data, run the demo)
#               make test   (set up .venv, run the test suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test venv lock benchmark clean

venv: $(STAMP)

# Install exactly the versions in requirements.lock (the ones the test suite ran with).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test]"
	touch $(STAMP)

data/demo/.complete: $(STAMP) pipeline/demo.py
	$(BIN)/midr demo-data --out data/demo --aoi aoi/demo_mine.geojson
	touch $@

demo: data/demo/.complete
	$(BIN)/midr run configs/demo.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

benchmark: data/demo/.complete
	$(BIN)/python benchmarks/demo_run.py

# Re-pin after changing dependencies in pyproject.toml: resolves into a scratch venv, writes the lock.
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet --upgrade pip
	build/lock-venv/bin/python -m pip install --quiet ".[test]"
	build/lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^midr-pipeline' > requirements.lock

clean:
	rm -rf $(VENV) build data/demo
