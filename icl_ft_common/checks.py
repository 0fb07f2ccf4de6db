"""Checks of a command's inputs that run before any model is loaded, each failing with one line.

Every command (finetune, augment, the study, compare) checks its model and its output location
here first, so a typo costs a second, not a model load followed by a chain of tracebacks (and
transformers' misleading "install sentencepiece or tiktoken" for a directory that is no model).

    check_model_source("/path/to/model")            # InputError unless it can be loaded
    check_output_location(Path("adapters/x"), "directory", overwrite=False)

The checks only read: nothing is created, so a refused command leaves the disk as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

# Files a model directory saved by `save_pretrained` always has; one of the tokenizer files too.
MODEL_CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


class InputError(ValueError):
    """A command's input cannot work; the message (one line) names the input and the fix."""


def _looks_like_path(model: str) -> bool:
    """A hub id is `name` or `owner/name`; anything else (absolute, ./, ~, two slashes) is meant as a path."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model


def check_model_source(model: str, flag: str = "--model") -> None:
    """`model` is a loadable model directory, or a hub id that is cached or may be downloaded.

    A local directory needs config.json and a tokenizer file. A hub id is accepted online; offline
    (HF_HUB_OFFLINE=1) only if its config is in the Hugging Face cache.
    """
    fix = "give a directory saved by save_pretrained (e.g. $(icl-ft model path)) or a Hugging Face hub id"
    path = Path(model).expanduser()
    if path.is_file():
        raise InputError(f"{flag} {model} is a file, not a model directory; {fix}")
    if path.is_dir():
        if not (path / MODEL_CONFIG_FILE).is_file():
            raise InputError(f"{flag} {model} has no {MODEL_CONFIG_FILE}, so it is not a model directory; {fix}")
        if not any((path / name).is_file() for name in TOKENIZER_FILES):
            raise InputError(
                f"{flag} {model} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); "
                "save the tokenizer into it too (tokenizer.save_pretrained)"
            )
        return
    if _looks_like_path(model):
        raise InputError(f"{flag} {model} does not exist; {fix}")
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(model, MODEL_CONFIG_FILE)
        except ValueError:  # not even a valid repo id
            cached = None
        if not isinstance(cached, str):
            raise InputError(
                f"{flag} {model} is neither a local directory nor in the Hugging Face cache, and the hub is "
                f"offline (HF_HUB_OFFLINE=1); {fix}"
            )


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def check_output_location(path: Path, kind: str, flag: str = "--output", overwrite: bool | None = None) -> None:
    """`path` can be written as a `kind` ("directory" or "file") by this process.

    Refused: an existing entry of the other kind (a file where a directory goes, or the reverse:
    --overwrite replaces an earlier output of this command, never something else), a path under a
    regular file, a parent directory this process may not write. `overwrite=False` also refuses
    an existing output of the right kind (None: the caller decides about those).
    """
    path = Path(path).expanduser().absolute()
    if os.path.lexists(path):
        is_dir = path.is_dir()
        if kind == "directory" and not is_dir:
            raise InputError(f"{flag} {path} is a file, not a directory; remove it or choose another {flag}")
        if kind == "file" and is_dir:
            raise InputError(f"{flag} {path} is a directory, not a file; choose a file path for {flag}")
        if overwrite is False:
            raise InputError(f"{flag} {path} already exists; pass --overwrite to replace it or choose another {flag}")
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        raise InputError(
            f"{flag} {path} cannot be created: {existing} is a file, not a directory; choose another {flag}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path} cannot be created: {existing} is not writable; choose another {flag}")
