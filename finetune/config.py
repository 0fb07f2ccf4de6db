"""`FinetuneConfig`: every setting of a finetuning run, with its help text and checks.

Settings come from three layers, later ones winning: the field defaults below, a YAML
file (`--config run.yaml`, keys are field names), then command-line flags
(`--learning-rate 1e-4`). Unknown keys are rejected with the list of valid ones.

This module imports no heavy library: `python -m finetune --help` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

UNITS = ("sentence", "cumulative", "document")
PRECISIONS = ("auto", "fp32", "bf16")
EMBEDDED_MODEL = "embedded"


class ConfigError(ValueError):
    """A setting is invalid; the message names the field, the value and the fix."""


def _field(default: Any, help: str, **kwargs: Any) -> Any:
    if isinstance(default, (list, dict)):
        factory = type(default)
        return dataclasses.field(default_factory=lambda: factory(default), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


@dataclasses.dataclass
class FinetuneConfig:
    # What to train on.
    family: str = _field("", "task family whose training split is the data, e.g. reversal or syllogism (required)")
    output_dir: str = _field(
        "", "directory of the finished adapter; it appears only when training is complete (required)"
    )
    model: str = _field(
        EMBEDDED_MODEL, "base causal LM: a Hugging Face model directory or hub id; 'embedded' = SmolLM2-135M-Instruct"
    )
    data_seed: int = _field(0, "seed of the family's data generator (lm-eval --metadata '{\"seed\": S}')")
    family_options: dict = _field({}, "generator options as JSON, e.g. '{\"num_facts\": 50}' (see the family README)")
    extra_data: list = _field(
        [], 'comma-separated JSONL files of extra training documents (rows with a "text" field, e.g. from augment)'
    )
    unit: str = _field(
        "sentence",
        "training unit: 'sentence' (each sentence alone), 'cumulative' (each sentence after the preceding "
        "sentences of its document, which are context only, not in the loss) or 'document'",
    )
    # How long.
    epochs: float = _field(3.0, "passes over the training units; gives the step count unless --steps is set")
    min_steps: int = _field(200, "lower clamp of the step count derived from --epochs (paper: 200-1000 steps)")
    max_steps: int = _field(1000, "upper clamp of the step count derived from --epochs")
    steps: int | None = _field(None, "exact number of optimizer steps (overrides --epochs and the clamps)")
    # Optimization (paper: batch 8 or 16, learning rate 3e-4).
    batch_size: int = _field(8, "training units per optimizer step, summed over all processes")
    micro_batch_size: int | None = _field(
        None, "units per forward pass and process (default batch_size / processes); the rest is gradient accumulation"
    )
    learning_rate: float = _field(3e-4, "peak learning rate")
    lr_scheduler: str = _field("linear", "transformers learning-rate schedule: linear, cosine, constant, ...")
    warmup_steps: int = _field(10, "linear warm-up steps")
    weight_decay: float = _field(0.0, "AdamW weight decay")
    max_length: int = _field(256, "longest training unit in tokens; longer units are truncated (and counted)")
    seed: int = _field(0, "seed of LoRA initialisation, dropout and data order")
    precision: str = _field(
        "auto", "'fp32', 'bf16' (mixed precision: fp32 weights, bf16 matmuls) or 'auto' (bf16 where supported)"
    )
    threads: int = _field(
        0, "CPU threads for torch (0 = torch's default, one per core); on a busy shared machine 1 can be much faster"
    )
    # LoRA.
    lora_r: int = _field(16, "LoRA rank")
    lora_alpha: float = _field(32.0, "LoRA scaling numerator (scale = alpha / r)")
    # No dropout by default: the goal is to memorize the facts, and on CPU the dropout masks took
    # 12% of a SmolLM2 step (torch profiler, 210 LoRA modules). It also makes 1 and N processes
    # train identically (each process draws its own masks).
    lora_dropout: float = _field(0.0, "dropout on the LoRA input")
    lora_target_modules: str = _field(
        "all-linear", "modules that get adapters: 'all-linear' (every linear layer but the output head) or names"
    )
    # Run control.
    work_dir: str = _field("", "checkpoints and run state (default: OUTPUT_DIR.work next to the output)")
    save_steps: int = _field(50, "checkpoint every N steps (what --resume continues from)")
    logging_steps: int = _field(10, "log loss and throughput every N steps")
    resume: bool = _field(False, "continue an interrupted run from its last complete checkpoint")
    overwrite: bool = _field(False, "replace an existing output directory and discard old checkpoints")
    keep_checkpoints: bool = _field(False, "keep the work directory after success (it is deleted by default)")
    verify_texts: int = _field(32, "training units scored with and without the adapter before reporting success")
    min_loglik_change: float = _field(
        1e-3, "fail unless the adapter moves the mean log-likelihood per token of those units by at least this (nats)"
    )
    training_args: dict = _field(
        {}, 'extra transformers.TrainingArguments as JSON, e.g. \'{"deepspeed": "ds.json"}\' or FSDP settings'
    )

    def __post_init__(self) -> None:
        from lm_eval_tasks.api import FAMILIES, family_options

        if not self.family:
            _fail("family", self.family, f"is required; choose one of {list(FAMILIES)}")
        if self.family not in FAMILIES:
            _fail("family", self.family, f"is not a task family; choose one of {list(FAMILIES)}")
        unknown_options = sorted(set(self.family_options) - set(family_options(self.family)))
        if unknown_options:
            _fail(
                "family_options", self.family_options,
                f"has unknown option(s) {unknown_options}; valid: {sorted(family_options(self.family))}",
            )  # fmt: skip
        if not self.output_dir:
            _fail("output_dir", self.output_dir, "is required: where the finished adapter goes")
        if not self.model:
            _fail("model", self.model, f"is empty; give a model directory, a hub id or {EMBEDDED_MODEL!r}")
        for path in self.extra_data:
            if not Path(path).is_file():
                _fail("extra_data", path, "is not a file; give existing JSONL files, comma-separated")
        _choice("unit", self.unit, UNITS)
        _choice("precision", self.precision, PRECISIONS)
        for name in ("batch_size", "min_steps", "max_steps", "lora_r", "max_length", "save_steps", "logging_steps",
                     "verify_texts"):  # fmt: skip
            _at_least(name, getattr(self, name), 1)
        for name in ("warmup_steps", "weight_decay", "min_loglik_change", "threads"):
            _at_least(name, getattr(self, name), 0)
        if self.steps is not None:
            _at_least("steps", self.steps, 1)
        if self.min_steps > self.max_steps:
            _fail("min_steps", self.min_steps, f"exceeds max_steps={self.max_steps}; lower it or raise max_steps")
        if self.micro_batch_size is not None:
            _at_least("micro_batch_size", self.micro_batch_size, 1)
            if self.batch_size % self.micro_batch_size:
                _fail(
                    "micro_batch_size", self.micro_batch_size,
                    f"must divide batch_size={self.batch_size} (the rest of a step is gradient accumulation)",
                )  # fmt: skip
        if not self.epochs > 0:
            _fail("epochs", self.epochs, "must be > 0")
        if not self.learning_rate > 0:
            _fail("learning_rate", self.learning_rate, "must be > 0, e.g. 3e-4")
        if not self.lora_alpha > 0:
            _fail("lora_alpha", self.lora_alpha, "must be > 0, e.g. 2 * lora_r")
        if not 0 <= self.lora_dropout < 1:
            _fail("lora_dropout", self.lora_dropout, "must be in [0, 1), e.g. 0.05")
        if not self.lora_target_modules.strip(" ,"):
            _fail("lora_target_modules", self.lora_target_modules, "is empty; use 'all-linear' or module names")
        if self.resume and self.overwrite:
            _fail(
                "overwrite",
                self.overwrite,
                "conflicts with resume: resume keeps the checkpoints, overwrite discards them",
            )

    # --- derived values -------------------------------------------------------------------

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir).expanduser().resolve()

    @property
    def work_path(self) -> Path:
        if self.work_dir:
            return Path(self.work_dir).expanduser().resolve()
        return self.output_path.with_name(self.output_path.name + ".work")

    def num_steps(self, num_units: int) -> int:
        """Optimizer steps: `steps` if set, else `epochs` passes clamped to [min_steps, max_steps].

        The paper trained 200-1000 steps "depending on data size"; a fixed number of passes
        scales the steps with the data, and the clamp keeps small families (72 syllogisms)
        from stopping after a few steps and large augmented sets from running for hours.
        """
        if self.steps is not None:
            return self.steps
        steps_for_epochs = -(-int(self.epochs * num_units) // self.batch_size)  # ceil
        return min(max(steps_for_epochs, self.min_steps), self.max_steps)

    def to_lora_config(self):
        """The `peft.LoraConfig` of this run."""
        from peft import LoraConfig

        modules = self.lora_target_modules.strip()
        target = modules if modules == "all-linear" else [m.strip() for m in modules.split(",") if m.strip()]
        return LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=target,
            bias="none",
            task_type="CAUSAL_LM",
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Settings that steer how a run is carried out but not what it computes: a resumed run may
# change them without invalidating its checkpoints.
RUN_CONTROL_FIELDS = frozenset(
    {
        "resume",
        "overwrite",
        "keep_checkpoints",
        "logging_steps",
        "work_dir",
        "verify_texts",
        "min_loglik_change",
        "threads",
    }
)


def _fail(name: str, value: Any, problem: str) -> typing.NoReturn:
    raise ConfigError(f"{name}={value!r} {problem}")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(name, value, f"is not valid; choose one of {list(choices)}")


def _at_least(name: str, value: float, minimum: float) -> None:
    if value < minimum:
        _fail(name, value, f"must be >= {minimum}")


# --- building a config from a YAML file and command-line flags -------------------------------

FIELDS = {f.name: f for f in dataclasses.fields(FinetuneConfig)}
_TYPES = typing.get_type_hints(FinetuneConfig)


def _base_type(name: str) -> type:
    hint = _TYPES[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def coerce(name: str, value: Any) -> Any:
    """Give `value` (a YAML value or a command-line string) the type of field `name`."""
    kind = _base_type(name)
    if value is None and typing.get_args(_TYPES[name]):  # Optional field
        return None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is list:
            if isinstance(value, str):
                return [item.strip() for item in value.split(",") if item.strip()]
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return value
            raise ValueError
        if kind is dict:
            parsed = json.loads(value) if isinstance(value, str) else value
            if not isinstance(parsed, dict):
                raise ValueError
            return parsed
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError
        return str(value)
    except (ValueError, TypeError):
        expected = {list: "a list or comma-separated string", dict: "a JSON object"}.get(kind, kind.__name__)
        raise ConfigError(f"{name}={value!r} is not valid; expected {expected}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Field values from a YAML mapping; unknown keys are an error listing the valid ones."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config={str(path)!r} is not a file")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"config={str(path)!r} is not valid YAML{where}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config={str(path)!r} must be a mapping of field: value, not {type(loaded).__name__}")
    values = {str(key).replace("-", "_"): value for key, value in loaded.items()}
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"config={str(path)!r} has unknown key(s) {unknown}; valid keys: {sorted(FIELDS)}")
    return {name: coerce(name, value) for name, value in values.items()}


def build_parser() -> argparse.ArgumentParser:
    """Flags named after the fields (`--learning-rate`); unset flags stay absent from the result."""
    parser = argparse.ArgumentParser(
        prog="python -m finetune",
        description="Train a LoRA adapter on a task family's training facts (lm-eval-icl-ft).",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", help="YAML file of field: value defaults; flags override it")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # The spelling `augment` and `icl-ft data` use too; merged over --family-options.
    parser.add_argument("--family-option", dest="family_option", action="append", metavar="NAME=VALUE",
                        help="one generator option of the family, e.g. num_facts=20 (repeatable)")  # fmt: skip
    for name, field in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = f"{field.metadata['help']} [default: {default!r}]"
        if _base_type(name) is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=name, metavar=_base_type(name).__name__.upper(), help=help_text)
    return parser


def config_from_args(argv: list[str] | None = None) -> tuple[FinetuneConfig, bool]:
    """(config, verbose) from command-line arguments, layered over `--config` if given."""
    given = vars(build_parser().parse_args(argv))
    verbose = given.pop("verbose", False)
    values = load_yaml(given.pop("config")) if "config" in given else {}
    from lm_eval_tasks.api import parse_family_options

    single_options = given.pop("family_option", [])
    values.update({name: coerce(name, value) for name, value in given.items()})
    if single_options:
        try:
            parsed = parse_family_options(single_options)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        values["family_options"] = {**values.get("family_options", {}), **parsed}
    return FinetuneConfig(**values), verbose
