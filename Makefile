# The two commands a new user needs: `make demo` and `make test` (README).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
EXTRAS  ?= runtime,host,server,dev
STAMP   := $(VENV)/.installed-$(subst $(comma),_,$(EXTRAS))
comma   := ,
PYTEST_ARGS ?=

.PHONY: install build test demo bench lint format fuzz clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	@touch $@

install: $(STAMP) build

# Rebuilds the Cython extensions in place (cheap when nothing changed).
build: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

demo: install
	$(BIN)/python -m edge_sdk.demo

bench: install
	$(BIN)/python -m benchmarks.run

lint: install
	$(BIN)/ruff check edge_sdk tests tools examples benchmarks
	$(BIN)/ruff format --check edge_sdk tests tools examples benchmarks

format: install
	$(BIN)/ruff format edge_sdk tests tools examples benchmarks

fuzz: install
	$(BIN)/python tools/fuzz_firmware.py --iterations 200000

clean:
	rm -rf build $(VENV) edge_sdk/**/*.so edge_sdk/*.so
