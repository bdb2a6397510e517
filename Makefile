# The two commands a new user needs: `make demo` and `make test` (README).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/python -m pip install -q
DEMO_EXTRAS := runtime,host,server
TEST_EXTRAS := runtime,host,server,train,dev
PYTEST_ARGS ?=

.PHONY: install install-test build test demo bench lint format fuzz clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) --upgrade pip
	# build tools in the venv, so the Cython extension builds in place without build isolation
	$(PIP) "Cython>=3.0" "setuptools>=77" wheel "numpy>=1.24"

$(VENV)/.demo-installed: $(BIN)/python pyproject.toml setup.py
	$(PIP) --no-build-isolation -e ".[$(DEMO_EXTRAS)]"
	@touch $@

# torch is pinned to the CPU build (the only torch spec that does not pull GBs of CUDA packages here).
$(VENV)/.test-installed: $(VENV)/.demo-installed
	$(PIP) torch==2.13.0
	$(PIP) --no-build-isolation -e ".[$(TEST_EXTRAS)]"
	@touch $@

install: $(VENV)/.demo-installed build
install-test: $(VENV)/.test-installed build

# (Re)builds the Cython extensions in place; cheap when nothing changed.
build: $(VENV)/.demo-installed
	$(BIN)/python setup.py -q build_ext --inplace

test: install-test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

demo: install
	$(BIN)/python -m edge_sdk.demo

bench: install
	$(BIN)/python -m benchmarks.run

lint: install-test
	$(BIN)/ruff check edge_sdk tests tools examples benchmarks
	$(BIN)/ruff format --check edge_sdk tests tools examples benchmarks

format: install-test
	$(BIN)/ruff format edge_sdk tests tools examples benchmarks

fuzz: install
	$(BIN)/python tools/fuzz_firmware.py --iterations 200000
	$(BIN)/python tools/fuzz_bitstream.py --iterations 200000

clean:
	rm -rf build $(VENV) edge_sdk/*.so edge_sdk/*/*.so
