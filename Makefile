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

# every benchmark the README quotes (about 6 minutes); each prints its table and saves bench/results/*.json
bench: $(STAMP)
	$(BIN)/python bench/sim_vs_csim.py
	$(BIN)/python bench/sim_speed.py
	$(BIN)/python bench/accuracy_table.py
	$(BIN)/python bench/m3vit_scale.py
	$(BIN)/python bench/hls4ml_compare.py
	$(BIN)/python bench/build_speed.py
	$(BIN)/python bench/boards.py

models: $(STAMP)
	$(BIN)/python models/build_digits_models.py

# QKeras -> QONNX (`hwgen import-qkeras`, models/qkeras_digits.py): TensorFlow 2.14 + QKeras 0.9.0 +
# qonnx 0.4.0 force numpy<2 and protobuf 3.20, so they get their own venv (pinned in
# requirements-qkeras.txt), never .venv. hwgen goes on top without its dependencies.
QK_VENV  ?= .venv-qkeras
QK_STAMP := $(QK_VENV)/.hwgen-qkeras-installed

.PHONY: qkeras-env
qkeras-env: $(QK_STAMP)

$(QK_STAMP): requirements-qkeras.txt pyproject.toml
	@test -x $(QK_VENV)/bin/python || $(PYTHON) -m venv $(QK_VENV)
	$(QK_VENV)/bin/python -m pip install -q -r requirements-qkeras.txt
	$(QK_VENV)/bin/python -m pip install -q --no-deps -e .
	TF_CPP_MIN_LOG_LEVEL=3 $(QK_VENV)/bin/python -c "import qkeras, tf2onnx; from qonnx.converters import from_keras; import hwgen.commands.import_qkeras"
	@touch $@

clean:
	rm -rf build .pytest_cache
