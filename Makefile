# `make run`: set up .venv and reproduce every claim of the quiz (writes infonorm-report/).
# `make test`: set up .venv, lint, and run the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch that these machines keep on local disk; the package itself only
# asks for torch>=2.3.
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: run test lint bench gpu-check clean

run: $(STAMP)
	$(BIN)/infonorm reproduce --results docs/results

test: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

bench: $(STAMP)
	$(BIN)/infonorm bench --op layer_norm --device cpu
	$(BIN)/infonorm bench --op mutual_information --device cpu

# On a machine with a CUDA GPU whose python3 already has torch and triton (no .venv): the GPU
# tests, every CUDA benchmark (ours against its peers in one run), the kernels' knob sweep;
# logs and JSON in gpu-out/ (copy the benchmark JSON to docs/results/ to publish it).
GPU_PYTHON ?= python3
gpu-check:
	OUT=gpu-out GPU_PYTHON=$(GPU_PYTHON) scripts/gpu-session.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) infonorm-report .pytest_cache .ruff_cache
