"""What lm-eval passes to a task's `custom_dataset` function: our data options, checked and typed.

lm-eval 0.4.13 calls `custom_dataset(**metadata, **dataset_kwargs)`. `dataset_kwargs` is
the task YAML's (`family`). `metadata` merges, in this order: the task YAML's `metadata`
(`version`, `seed`), the run's metadata and `config_source` (added by lm-eval's task
factory). Under `lm_eval` (and `simple_evaluate` without a TaskManager) the run's
metadata is every `--model_args` entry (`pretrained`, `dtype`, ...) merged with
`--metadata`; a Python caller's own `TaskManager(metadata=...)` passes just that.

`task_options` keeps the family's options and rejects everything else that is neither
lm-eval's own key nor a model argument of the running evaluation: `{"num_factz": 4}` is a
`DataError` naming the valid keys, not a silent run on the defaults. Values get the
option's type strictly: "7" (a model_args-style string) is 7, but 1.5 for an integer
option is an error, not a silent 1.

The model arguments of the running evaluation are read from lm-eval's `simple_evaluate`
frame on the call stack (its `model_args` parameter): lm-eval hands them to the data
function only merged into the metadata, so this is how they are told apart from a
misspelt option. `model_context_tokens` reads the context length from the model's config
(no weights are loaded), so the ICL token budget follows the model.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from typing import Any

from icl_ft_common.config import parse_bool
from lm_eval_tasks.errors import DataError

logger = logging.getLogger(__name__)

# Keys lm-eval itself puts into the metadata: the YAML's version, the factory's config
# source, and the placeholders of a task without YAML.
LM_EVAL_KEYS = frozenset({"version", "config_source", "config", "_metadata"})
# Model arguments accepted even when no `simple_evaluate` frame names the run's own (a
# Python caller passing a model's arguments through its TaskManager's metadata).
COMMON_MODEL_ARGS = frozenset(
    {
        "pretrained",
        "peft",
        "delta",
        "dtype",
        "device",
        "revision",
        "trust_remote_code",
        "gguf_file",
        "tokenizer",
        "max_length",
        "backend",
        "parallelize",
        "batch_size",
        "max_batch_size",
        "add_bos_token",
        "max_model_len",
    }
)
# lm-eval's fallback when a config names no context length (lm_eval.models.utils.DEFAULT_MAX_LENGTH).
LM_EVAL_DEFAULT_MAX_LENGTH = 2048
CONTEXT_LENGTH_ATTRIBUTES = ("n_positions", "max_position_embeddings", "n_ctx")
_INTEGER = re.compile(r"[+-]?\d+")


def run_model_args() -> dict[str, Any]:
    """The `model_args` of the lm-eval evaluation running on this call stack ({} if none)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "simple_evaluate" and frame.f_globals.get("__name__") == "lm_eval.evaluator":
            model_args = frame.f_locals.get("model_args")
            if isinstance(model_args, dict):
                return dict(model_args)
            if isinstance(model_args, str) and model_args.strip():
                from lm_eval.utils import simple_parse_args_string

                return simple_parse_args_string(model_args)
            return {}
        frame = frame.f_back
    return {}


def coerce_option(name: str, default: Any, value: Any) -> Any:
    """`value` as the type of the option's `default`; strings from the command line are parsed strictly."""
    if default is None or type(value) is type(default):
        return value
    expected = type(default).__name__
    if isinstance(default, bool):
        if isinstance(value, str):
            try:
                return parse_bool(value)  # the words every CLI of ours accepts: true/false, yes/no, 1/0, on/off
            except ValueError:
                pass
    elif isinstance(default, int):
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return int(value)
        expected = "integer"
    elif isinstance(default, float):
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, str):
        expected = "string"
    raise DataError(f"option {name}={value!r} must be of type {expected} (like its default {default!r})")


def task_options(family: str, metadata: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """The family's options (`known`: name -> default, `seed` included) from what lm-eval passed, typed.

    Raises DataError on a key that is neither an option, nor lm-eval's own, nor a model argument."""
    model_keys = set(run_model_args()) | COMMON_MODEL_ARGS
    unknown = sorted(key for key in metadata if key not in known and key not in LM_EVAL_KEYS | model_keys)
    if unknown:
        raise DataError(
            f"unknown --metadata key(s) {unknown} for the {family} tasks; valid keys: {sorted(known)} "
            "(lm-eval's own keys and --model_args entries are accepted too; --metadata applies to every task of a run)"
        )
    return {name: coerce_option(name, known[name], metadata[name]) for name in known if name in metadata}


def model_context_tokens() -> tuple[int | None, str]:
    """(context length, where it came from) of the running evaluation's model, or (None, "") if unknown."""
    model_args = run_model_args()
    for key in ("max_length", "max_model_len"):  # set by the user: lm-eval truncates to it
        if model_args.get(key):
            return int(model_args[key]), f"--model_args {key}={model_args[key]}"
    pretrained = model_args.get("pretrained")
    if not isinstance(pretrained, str) or not pretrained:
        return None, ""
    options = {key: model_args[key] for key in ("revision", "gguf_file") if model_args.get(key)}
    trust = str(model_args.get("trust_remote_code", "")).lower() == "true"
    length = _config_context_length(pretrained, tuple(sorted(options.items())), trust)
    if length is None:
        return None, ""
    return length, f"the context length of {pretrained} ({length} tokens)"


@functools.lru_cache(maxsize=8)
def _config_context_length(pretrained: str, options: tuple, trust_remote_code: bool) -> int | None:
    """The context length in a model's config, as lm-eval's HFLM resolves it (no weights are loaded)."""
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(pretrained, trust_remote_code=trust_remote_code, **dict(options))
    except Exception as err:  # noqa: BLE001 -- any failure means "unknown", and lm-eval will report it itself
        logger.warning(
            "cannot read the config of %s (%s); the ICL budget follows the default context",
            pretrained,
            " ".join(str(err).split())[:200],
        )
        return None
    for source in (getattr(config, "text_config", None), config):
        for attribute in CONTEXT_LENGTH_ATTRIBUTES:
            value = getattr(source, attribute, None) if source is not None else None
            if isinstance(value, int) and value > 0:
                return value
    return LM_EVAL_DEFAULT_MAX_LENGTH
