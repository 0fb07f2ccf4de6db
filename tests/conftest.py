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
def smollm2_path():
    """The embedded SmolLM2-135M-Instruct checkpoint (installed and converted on first use)."""
    from icl_ft_common.embedded_model import ensure_checkpoint

    return ensure_checkpoint()
