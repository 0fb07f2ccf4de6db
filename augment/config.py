"""`AugmentConfig`: every option of `python -m augment`, with its help text and checks.

A YAML file (`--config run.yaml`) gives defaults, command-line flags override them, and
an unknown key in either is an error that lists the valid ones.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

MODES = ("local", "global", "oracle")
BACKENDS = ("hf", "vllm")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class ConfigError(ValueError):
    """A bad option; the message names the option, the value and the fix."""


def _field(default: Any, help: str, **metadata: Any) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


@dataclasses.dataclass
class AugmentConfig:
    mode: str = _field(None, f"what to generate: one of {MODES}", choices=MODES)
    family: str = _field("reversal", "task family whose training data is augmented (lm_eval_tasks.api.FAMILIES)")
    data_seed: int = _field(0, "seed of the family's generated data (the `seed` of the lm-eval tasks' --metadata)")
    family_option: dict = dataclasses.field(
        default_factory=dict, metadata={"help": "generator option of the family, NAME=VALUE (e.g. num_facts=20)"}
    )
    output: str = _field(
        None, "output JSONL path; default augmented/<family>-seed<data_seed>-<mode>.jsonl (summary: .summary.json)"
    )
    model: str = _field(None, "generator model: HF directory or hub id (default: the embedded SmolLM2)")
    backend: str = _field("hf", f"generation back end: one of {BACKENDS} (vllm needs `pip install .[vllm]`)",
                          choices=BACKENDS)  # fmt: skip
    dtype: str = _field("auto", f"model weights dtype for the hf back end: one of {DTYPES}", choices=DTYPES)
    batch_size: int = _field(8, "prompts generated together (hf back end); keep RAM in mind")
    temperature: float = _field(0.0, "sampling temperature; 0 means greedy decoding")
    top_p: float = _field(1.0, "nucleus sampling mass (ignored when greedy)")
    max_new_tokens: int = _field(96, "generation length limit per prompt")
    num_samples: int = _field(1, "generations per source item (use > 1 only with temperature > 0)")
    seed: int = _field(0, "sampling seed (recorded in every row)")
    limit: int = _field(None, "augment only the first N source items (for trials)")
    context_token_budget: int = _field(
        6000, "global mode: most tokens of training documents shown in context; more are subsampled"
    )
    context: str = _field(
        "train", "global mode: `train` (every training document) or `facts` (each distinct fact once)",
        choices=("train", "facts"),
    )  # fmt: skip
    reuse_prefix_cache: bool = _field(True, "global mode: compute the shared context's KV cache once (hf back end)")
    max_sentence_words: int = _field(40, "filter: sentences longer than this many words are dropped")
    overwrite: bool = _field(False, "replace an existing output file (a partial one is always resumed)")

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check_type(field, getattr(self, field.name))
            choices = field.metadata.get("choices")
            value = getattr(self, field.name)
            if choices and value not in choices and not (field.name == "mode" and value is None):
                raise ConfigError(f"{field.name}={value!r} is not valid; choose one of {list(choices)}")
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
        from lm_eval_tasks.api import FAMILIES

        if self.family not in FAMILIES:
            raise ConfigError(f"family={self.family!r} is not a task family; choose one of {list(FAMILIES)}")

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
        return {"temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                "num_samples": self.num_samples}  # fmt: skip


_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "dict": (dict,)}


def _check_type(field: dataclasses.Field, value: Any) -> None:
    expected = _TYPES[str(field.type)]
    if value is None and field.default is None:
        return
    # bool is an int subclass: `batch_size: true` in YAML must not pass as 1
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        raise ConfigError(f"{field.name}={value!r} must be a {str(field.type)}")


FIELDS = {field.name: field for field in dataclasses.fields(AugmentConfig)}


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _converter(field: dataclasses.Field):
    kind = {"int": int, "float": float, "bool": _parse_bool}.get(str(field.type), str)
    return kind


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m augment",
        description="Write augmented finetuning data: a model's in-context rephrasings, reversals and "
        "inferences about a task family's training facts (or the generator's oracle statements).",
    )
    parser.add_argument("--config", help="YAML file of options (same names as the flags, with underscores)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    for name, field in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        if name == "family_option":
            parser.add_argument(flag, action="append", metavar="NAME=VALUE", help=field.metadata["help"])
            continue
        parser.add_argument(flag, dest=name, type=_converter(field), metavar=name.upper(),
                            default=argparse.SUPPRESS, help=field.metadata["help"])  # fmt: skip
    return parser


def load_yaml(path: str) -> dict[str, Any]:
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"config file {path!r} cannot be read: {err.strerror}") from None
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path!r} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path!r} must hold a mapping of option: value, not {type(values).__name__}")
    return values


def config_from_args(argv: list[str] | None = None) -> tuple[AugmentConfig, argparse.Namespace]:
    """Parse the command line (YAML defaults, then flags) into a checked AugmentConfig."""
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = load_yaml(args.config) if args.config else {}
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} in {args.config}; valid keys: {sorted(FIELDS)}")
    flags = {name: value for name, value in vars(args).items() if name in FIELDS and value is not None}
    if "family_option" in flags:
        from lm_eval_tasks.api import parse_family_options

        try:
            parsed = parse_family_options(flags["family_option"])
        except ValueError as err:
            raise ConfigError(str(err)) from None
        flags["family_option"] = {**values.get("family_option", {}), **parsed}
    values.update(flags)
    return AugmentConfig(**values), args
