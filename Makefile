# Two commands do all set-up on a fresh machine (see README):
#   make run    # install everything, then run the main job on the embedded model
#   make test   # install everything, then run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build, installed before anything else so that no dependency pulls a CUDA torch.
TORCH ?= torch==2.13.0
RUN_DIR ?= runs/study-small

# Everything here runs offline: the Hugging Face hub is never contacted.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run test test-fast lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

# The main job: every condition (base, ICL, FT, FT + local/global augmentation) on the
# embedded model with the small preset; resumable (rerun skips finished steps).
run: install
	$(BIN)/icl-ft study --model $$($(BIN)/icl-ft model path) \
		--tasks icl_ft_reversal,icl_ft_syllogism,icl_ft_reversal_curse,icl_ft_semantic --output $(RUN_DIR)

test: install
	$(BIN)/python -m pytest

# Everything but the real-model tests (a few minutes less).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

# ruff's lint rules and formatting (settings in pyproject.toml), and the layer rule between our packages.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/import_graph.py
