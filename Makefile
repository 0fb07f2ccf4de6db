# Two commands do all set-up on a fresh machine (see README):
#   make run    # install everything, then run the main job on the embedded model
#   make test   # install everything, then run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build, installed before anything else so that no dependency pulls a CUDA torch.
TORCH ?= torch==2.13.0
RESULTS ?= results

# Everything here runs offline: the Hugging Face hub is never contacted.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run test test-fast

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

# hf-prefix (icl_ft/prefix_scorer.py) is lm-eval's hf with the ICL prompts' shared prefix
# computed once: same scores, the ICL tasks >10x faster.
run: install
	$(BIN)/lm_eval --model hf-prefix --model_args pretrained=$$($(BIN)/icl-ft model path) \
		--tasks icl_ft --device cpu --batch_size 1 --output_path $(RESULTS)

test: install
	$(BIN)/python -m pytest

# Everything but the real-model tests (a few minutes less).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"
