"""`AugmentConfig`: every option of `python -m augment`, with its help text and checks.

A YAML file (`--config run.yaml`) gives defaults, command-line flags override them, and
an unknown key in either is an error that lists the valid ones (`icl_ft_common.config`,
the mechanism finetune and the study use too).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from icl_ft_common.config import ConfigError, check_fields, current_names, setting

__all__ = ["AugmentConfig", "ConfigError", "saved_settings"]

MODES = ("local", "global", "oracle")
BACKENDS = ("hf", "vllm")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclasses.dataclass
class AugmentConfig:
    mode: str | None = setting(None, f"what to generate: one of {MODES} (required)", choices=MODES)
    family: str = setting("reversal", "task family whose training data is augmented (lm_eval_tasks.families)")
    data_seed: int = setting(0, "seed of the family's generated data (the `seed` of the lm-eval tasks' --metadata)")
    family_options: dict = setting(
        {},
        "generator option of the family, NAME=VALUE (e.g. num_facts=20)",
        pairs=True,
        flag="--family-option",
        old_names=("family_option",),
    )
    output: str | None = setting(
        None, "output JSONL path; default augmented/<family>-seed<data_seed>-<mode>.jsonl (summary: .summary.json)"
    )
    model: str | None = setting(None, "generator model: HF directory or hub id (default: the embedded SmolLM2)")
    backend: str = setting("hf", "generation back end (vllm needs `pip install .[vllm]`)", choices=BACKENDS)
    dtype: str = setting("auto", "model weights dtype for the hf back end", choices=DTYPES)
    batch_size: int = setting(8, "prompts generated together (hf back end); keep RAM in mind")
    temperature: float = setting(0.0, "sampling temperature; 0 means greedy decoding")
    top_p: float = setting(1.0, "nucleus sampling mass (ignored when greedy)")
    max_new_tokens: int = setting(96, "generation length limit per prompt")
    num_samples: int = setting(1, "generations per source item (use > 1 only with temperature > 0)")
    sample_seed: int = setting(0, "sampling seed (recorded in every row)", old_names=("seed",))
    limit: int | None = setting(None, "augment only the first N source items (for trials)")
    context_token_budget: int = setting(
        6000, "global mode: most tokens of training documents shown in context; more are subsampled"
    )
    context: str = setting(
        "train",
        "global mode: `train` (every training document) or `facts` (each distinct fact once)",
        choices=("train", "facts"),
    )
    reuse_prefix_cache: bool = setting(True, "global mode: compute the shared context's KV cache once (hf back end)")
    max_sentence_words: int = setting(40, "filter: sentences longer than this many words are dropped")
    overwrite: bool = setting(False, "replace an existing output file (a partial one is always resumed)")

    def __post_init__(self) -> None:
        from lm_eval_tasks.api import typed_family_options
        from lm_eval_tasks.families import FAMILIES

        check_fields(self)
        if self.mode is None:
            raise ConfigError(f"mode is required; choose one of {list(MODES)} (e.g. --mode local)")
        positive = ("batch_size", "max_new_tokens", "num_samples", "context_token_budget", "max_sentence_words")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit={self.limit!r} must be >= 1 (or left unset for every item)")
        if self.temperature < 0:
            raise ConfigError(f"temperature={self.temperature!r} must be >= 0 (0 = greedy)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p!r} must be in (0, 1]")
        if self.num_samples > 1 and self.temperature == 0:
            raise ConfigError(
                f"num_samples={self.num_samples} with temperature=0 would repeat one greedy output; "
                "set temperature > 0 (e.g. 0.7) or num_samples=1"
            )
        if self.family not in FAMILIES:
            raise ConfigError(f"family={self.family!r} is not a task family; choose one of {list(FAMILIES)}")
        try:
            self.family_options = typed_family_options(self.family, self.family_options)
        except ValueError as err:
            raise ConfigError(f"family_options={self.family_options!r}: {err}") from None

    @property
    def output_path(self) -> Path:
        if self.output:
            return Path(self.output)
        return Path("augmented") / f"{self.family}-seed{self.data_seed}-{self.mode}.jsonl"

    def settings(self) -> dict[str, Any]:
        """What fixes the output: a partial output is resumed only under the same settings."""
        operational = {"output", "overwrite", "batch_size"}
        return {name: value for name, value in dataclasses.asdict(self).items() if name not in operational}

    def sampling(self) -> dict[str, Any]:
        """The sampling parameters recorded with every generated row."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "num_samples": self.num_samples,
        }


def saved_settings(saved: dict[str, Any]) -> dict[str, Any]:
    """Settings recorded by an earlier version (a `.partial` file's header) in today's names.

    `seed` became `sample_seed` and `family_option` became `family_options`, whose values were
    stored as given on the command line (text) and are compared typed.
    """
    from lm_eval_tasks.api import typed_family_options

    values = current_names(AugmentConfig, saved)
    try:
        values["family_options"] = typed_family_options(values["family"], values.get("family_options") or {})
    except (KeyError, ValueError):
        pass  # compared as saved; a difference is reported as one
    return values
