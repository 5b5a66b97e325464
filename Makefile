# Two commands do all setup on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo_out

.PHONY: install demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch first: a bare `torch` would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[train,viz,dev]'
	touch $@

install: $(VENV)/.installed

# synthesise + convert, pretrain a small Skeleton2vec on the CPU, linear-probe it and a random
# encoder, print the comparison (about 7 minutes on 2 cores); outputs in $(DEMO)/
demo: install
	$(BIN)/s2v-train demo --out $(DEMO) --overwrite

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python benchmarks/prep.py

clean:
	rm -rf $(DEMO) .pytest_cache
