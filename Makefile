# Two commands on a fresh machine: `make demo` and `make test`. Both create (or reuse) .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.hwgen-installed
DEMO   := models/onnx/moe_vit_digits.qdq.dynamo.onnx

.PHONY: all demo test test-all bench models clean

all: test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hwgen demo -o build/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

bench: $(STAMP)
	$(BIN)/python bench/sim_speed.py
	$(BIN)/python bench/m3vit_scale.py

models: $(STAMP)
	$(BIN)/python models/build_digits_models.py

clean:
	rm -rf build .pytest_cache
