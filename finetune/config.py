"""`FinetuneConfig`: every setting of a finetuning run, with its help text and checks.

Settings come from three layers, later ones winning: the field defaults below, a YAML
file (`--config run.yaml`, keys are field names), then command-line flags
(`--learning-rate 1e-4`); the mechanism is `icl_ft_common.config`, shared with augment and
the study. Unknown keys are rejected with the list of valid ones.

This module imports no heavy library: `python -m finetune --help` answers at once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from icl_ft_common.config import ConfigError, check_fields, current_names, setting

__all__ = ["EMBEDDED_MODEL", "RUN_CONTROL_FIELDS", "ConfigError", "FinetuneConfig", "saved_config_values"]

UNITS = ("sentence", "cumulative", "document")
PRECISIONS = ("auto", "fp32", "bf16")
EMBEDDED_MODEL = "embedded"


@dataclasses.dataclass
class FinetuneConfig:
    # What to train on.
    family: str = setting("", "task family whose training split is the data, e.g. reversal or syllogism (required)")
    output: str = setting(
        "",
        "directory of the finished adapter; it appears only when training is complete (required)",
        old_names=("output_dir",),
    )
    model: str = setting(
        EMBEDDED_MODEL, "base causal LM: a Hugging Face model directory or hub id; 'embedded' = SmolLM2-135M-Instruct"
    )
    data_seed: int = setting(0, "seed of the family's data generator (lm-eval --metadata '{\"seed\": S}')")
    family_options: dict = setting(
        {},
        "generator option of the family, e.g. num_facts=20 (see the family README)",
        pairs=True,
        flag="--family-option",
    )
    extra_data: list[str] = setting(
        [], 'comma-separated JSONL files of extra training documents (rows with a "text" field, e.g. from augment)'
    )
    unit: str = setting(
        "sentence",
        "training unit: 'sentence' (each sentence alone), 'cumulative' (each sentence after the preceding "
        "sentences of its document, which are context only, not in the loss) or 'document'",
        choices=UNITS,
    )
    # How long.
    epochs: float = setting(3.0, "passes over the training units; gives the step count unless --steps is set")
    min_steps: int = setting(200, "lower clamp of the step count derived from --epochs (paper: 200-1000 steps)")
    max_steps: int = setting(1000, "upper clamp of the step count derived from --epochs")
    steps: int | None = setting(None, "exact number of optimizer steps (overrides --epochs and the clamps)")
    # Optimization (paper: batch 8 or 16, learning rate 3e-4).
    batch_size: int = setting(8, "training units per optimizer step, summed over all processes")
    micro_batch_size: int | None = setting(
        None, "units per forward pass and process (default batch_size / processes); the rest is gradient accumulation"
    )
    learning_rate: float = setting(3e-4, "peak learning rate")
    lr_scheduler: str = setting("linear", "transformers learning-rate schedule: linear, cosine, constant, ...")
    warmup_steps: int = setting(10, "linear warm-up steps")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    max_length: int = setting(256, "longest training unit in tokens; longer units are truncated (and counted)")
    train_seed: int = setting(0, "seed of LoRA initialisation, dropout and data order", old_names=("seed",))
    precision: str = setting(
        "auto",
        "'fp32', 'bf16' (mixed precision: fp32 weights, bf16 matmuls) or 'auto' (bf16 where supported)",
        choices=PRECISIONS,
    )
    threads: int = setting(
        0, "CPU threads for torch (0 = torch's default, one per core); on a busy shared machine 1 can be much faster"
    )
    # LoRA.
    lora_r: int = setting(16, "LoRA rank")
    lora_alpha: float = setting(32.0, "LoRA scaling numerator (scale = alpha / r)")
    # No dropout by default: the goal is to memorize the facts, and on CPU the dropout masks took
    # 12% of a SmolLM2 step (torch profiler, 210 LoRA modules). It also makes 1 and N processes
    # train identically (each process draws its own masks).
    lora_dropout: float = setting(0.0, "dropout on the LoRA input")
    lora_target_modules: str = setting(
        "all-linear", "modules that get adapters: 'all-linear' (every linear layer but the output head) or names"
    )
    # Run control.
    work_dir: str = setting("", "checkpoints and run state (default: OUTPUT.work next to the output)")
    save_steps: int = setting(50, "checkpoint every N steps (what --resume continues from)")
    logging_steps: int = setting(10, "log loss and throughput every N steps")
    resume: bool = setting(False, "continue an interrupted run from its last complete checkpoint")
    overwrite: bool = setting(False, "replace an existing output directory and discard old checkpoints")
    keep_checkpoints: bool = setting(False, "keep the work directory after success (it is deleted by default)")
    verify_texts: int = setting(32, "training units scored with and without the adapter before reporting success")
    min_loglik_change: float = setting(
        1e-3, "fail unless the adapter moves the mean log-likelihood per token of those units by at least this (nats)"
    )
    training_args: dict = setting(
        {}, 'extra transformers.TrainingArguments as JSON, e.g. \'{"deepspeed": "ds.json"}\' or FSDP settings'
    )

    def __post_init__(self) -> None:
        from lm_eval_tasks.api import typed_family_options
        from lm_eval_tasks.families import FAMILIES

        check_fields(self)
        if not self.family:
            _fail("family", self.family, f"is required; choose one of {list(FAMILIES)}")
        if self.family not in FAMILIES:
            _fail("family", self.family, f"is not a task family; choose one of {list(FAMILIES)}")
        try:
            self.family_options = typed_family_options(self.family, self.family_options)
        except ValueError as err:
            _fail("family_options", self.family_options, "has " + str(err).replace(f" for family {self.family!r}", ""))
        if not self.output:
            _fail("output", self.output, "is required: where the finished adapter goes")
        if not self.model:
            _fail("model", self.model, f"is empty; give a model directory, a hub id or {EMBEDDED_MODEL!r}")
        for path in self.extra_data:
            if not Path(path).is_file():
                _fail("extra_data", path, "is not a file; give existing JSONL files, comma-separated")
        for name in (
            "batch_size",
            "min_steps",
            "max_steps",
            "lora_r",
            "max_length",
            "save_steps",
            "logging_steps",
            "verify_texts",
        ):
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
                    "micro_batch_size",
                    self.micro_batch_size,
                    f"must divide batch_size={self.batch_size} (the rest of a step is gradient accumulation)",
                )
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
        return Path(self.output).expanduser().resolve()

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


def saved_config_values(saved: dict[str, Any]) -> dict[str, Any]:
    """A config dict written by an earlier version (run_config.json, provenance) in today's names.

    `seed` became `train_seed` and `output_dir` became `output`; family options were stored as
    given on the command line (text) and are compared typed.
    """
    from lm_eval_tasks.api import typed_family_options

    values = current_names(FinetuneConfig, saved)
    try:
        values["family_options"] = typed_family_options(values["family"], values.get("family_options") or {})
    except (KeyError, ValueError):
        pass  # compared as saved; a difference is reported as one
    return values


def _fail(name: str, value: Any, problem: str):
    raise ConfigError(f"{name}={value!r} {problem}")


def _at_least(name: str, value: float, minimum: float) -> None:
    if value < minimum:
        _fail(name, value, f"must be >= {minimum}")
