"""One finetuning run: data, LoRA model, transformers Trainer, verified atomic output.

Layout of a run writing OUTPUT:

    OUTPUT.work/run_config.json     the config the checkpoints belong to
    OUTPUT.work/checkpoints/checkpoint-N/   Trainer checkpoints (adapter, optimizer, RNG, state)
    .OUTPUT.tmp-PID/                the finished adapter while it is written and checked
    OUTPUT/                         appears by rename only when complete

Data parallelism comes from the Trainer: under `accelerate launch` (or torchrun) every
process runs this same code, each takes its share of every optimizer step's batch, and
only the main process writes the output.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from finetune.config import EMBEDDED_MODEL, RUN_CONTROL_FIELDS, FinetuneConfig, saved_config_values
from finetune.errors import FinetuneError
from icl_ft_common.artifacts import PROVENANCE_FILE, RUN_CONFIG_FILE
from icl_ft_common.io import read_json, write_json_atomic

logger = logging.getLogger(__name__)


def resolve_model(model: str) -> str:
    if model != EMBEDDED_MODEL:
        return model
    from icl_ft_common.embedded_model import EmbeddedModelError, ensure_checkpoint

    try:
        return str(ensure_checkpoint())
    except EmbeddedModelError as err:
        raise FinetuneError(str(err)) from None


def resolve_precision(precision: str) -> str:
    """'auto' -> bf16 mixed precision where the hardware does bf16 natively, else fp32.

    Measured on this project's CPUs (AVX512-BF16), bf16 autocast trains SmolLM2 LoRA
    faster than fp32 (see benchmarks/bench_finetune.py); without native bf16 it is slower.
    """
    if precision != "auto":
        return precision
    import torch

    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:  # a private but long-standing torch probe for native bf16 CPU kernels (AVX512-BF16/AMX)
        native_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native_bf16 = False
    return "bf16" if native_bf16 else "fp32"


def is_complete_checkpoint(directory: Path) -> bool:
    """The Trainer writes trainer_state.json last: a checkpoint is usable once it parses."""
    try:
        json.loads((directory / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return (directory / "optimizer.pt").is_file() and any(directory.glob("rng_state*.pth"))


def checkpoint_step(directory: Path) -> int:
    """The global step of a Trainer checkpoint directory `checkpoint-N`, or -1 if it is not one."""
    step = directory.name.removeprefix("checkpoint-")
    return int(step) if step.isdigit() and directory.name.startswith("checkpoint-") else -1


def last_complete_checkpoint(checkpoints: Path) -> Path | None:
    for candidate in sorted(checkpoints.glob("checkpoint-*"), key=checkpoint_step, reverse=True):
        if checkpoint_step(candidate) >= 0 and is_complete_checkpoint(candidate):
            return candidate
    return None


def _config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    names = sorted((set(saved) | set(current)) - RUN_CONTROL_FIELDS)
    return [f"{n}: {saved.get(n)!r} -> {current.get(n)!r}" for n in names if saved.get(n) != current.get(n)]


def check_directories(cfg: FinetuneConfig) -> Path | None:
    """Refuse to clobber an output or an unfinished run; return the checkpoint to resume from.

    Read-only, so every process runs it (and fails alike) before any work is done.
    """
    output, work = cfg.output_path, cfg.work_path
    checkpoints = work / "checkpoints"
    if output.exists() and not cfg.overwrite:
        raise FinetuneError(f"output {output} already exists; pass --overwrite to replace it")
    if cfg.overwrite or not work.exists():
        return None
    has_checkpoints = checkpoints.is_dir() and any(checkpoints.iterdir())
    if has_checkpoints and not cfg.resume:
        raise FinetuneError(
            f"{work} holds checkpoints of an unfinished run; pass --resume to continue it or --overwrite to start over"
        )
    saved_path = work / RUN_CONFIG_FILE
    if cfg.resume and saved_path.is_file():
        differences = _config_differences(saved_config_values(read_json(saved_path)), cfg.to_dict())
        if differences:
            raise FinetuneError(
                f"--resume with settings that differ from the interrupted run: {'; '.join(differences)}"
            )
    resume_from = last_complete_checkpoint(checkpoints) if has_checkpoints else None
    if cfg.resume and resume_from is None:
        logger.warning("--resume: no complete checkpoint in %s; starting from the beginning", checkpoints)
    return resume_from


def prepare_directories(cfg: FinetuneConfig, resume_from: Path | None) -> None:
    """Main process only: clear what a previous run left behind and record this run's config."""
    output, work = cfg.output_path, cfg.work_path
    checkpoints = work / "checkpoints"
    if cfg.overwrite:
        shutil.rmtree(work, ignore_errors=True)
    checkpoints.mkdir(parents=True, exist_ok=True)
    # A kill -9 mid-save can leave a checkpoint without its trainer_state.json; the
    # Trainer would count it as the newest when rotating, so remove it.
    newest_step = checkpoint_step(resume_from) if resume_from else -1
    for stale in checkpoints.glob("checkpoint-*"):
        if checkpoint_step(stale) > newest_step:
            shutil.rmtree(stale)
    for leftover in [*output.parent.glob(f".{output.name}.tmp-*"), *output.parent.glob(f".{output.name}.old-*")]:
        shutil.rmtree(leftover, ignore_errors=True)  # left by killed runs
    write_json_atomic(work / RUN_CONFIG_FILE, cfg.to_dict(), sort_keys=True)


def _training_arguments(cfg: FinetuneConfig, micro_batch_size: int, accumulation: int, steps: int, precision: str):
    import torch
    from transformers import TrainingArguments

    valid = {f.name for f in dataclasses.fields(TrainingArguments)}
    unknown = sorted(set(cfg.training_args) - valid)
    if unknown:
        raise FinetuneError(f"training_args has unknown transformers.TrainingArguments field(s) {unknown}")
    arguments = dict(
        output_dir=str(cfg.work_path / "checkpoints"),
        max_steps=steps,
        per_device_train_batch_size=micro_batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        seed=cfg.train_seed,
        bf16=precision == "bf16",
        use_cpu=not torch.cuda.is_available(),
        # The batch order is fixed up front (data.training_order); the Trainer must not reshuffle.
        train_sampling_strategy="sequential",
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        disable_tqdm=True,
        report_to="none",
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
    )
    arguments.update(cfg.training_args)
    return TrainingArguments(**arguments)


def _log_callback(tokens_per_step: list[int]):
    from transformers import TrainerCallback

    class LogProgress(TrainerCallback):
        """One log line per logging interval: loss, learning rate, tokens/s (all processes' tokens)."""

        def __init__(self):
            self.last = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            now, step = time.perf_counter(), state.global_step
            rate = ""
            if self.last is not None and step > self.last[1]:
                tokens = sum(tokens_per_step[self.last[1] : step])
                rate = f" {tokens / (now - self.last[0]):.0f} tokens/s"
            logger.info(
                "step %d/%d loss %.4f lr %.2e%s",
                step,
                state.max_steps,
                logs["loss"],
                logs.get("learning_rate", 0),
                rate,
            )
            self.last = (now, step)

        def on_train_begin(self, args, state, control, **kwargs):
            self.last = (time.perf_counter(), state.global_step)

    return LogProgress()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("lm-eval-icl-ft", "torch", "transformers", "peft", "accelerate"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


@dataclasses.dataclass
class TrainingPlan:
    """Everything about the data of a run that is fixed before training starts."""

    documents: int
    units: int
    family_provenance: dict[str, Any]
    extra_files: list[Any]
    examples: list[dict[str, list[int]]]
    truncated: int
    steps: int
    order: list[int]
    padding: dict[str, Any]
    tokens_per_step: list[int]

    @property
    def epochs(self) -> float:
        return len(self.order) / len(self.examples)


def plan_training(cfg: FinetuneConfig, tokenizer, micro_batch_size: int) -> TrainingPlan:
    from finetune import data

    documents, family_provenance, extra_files = data.load_documents(
        cfg.family, cfg.data_seed, cfg.family_options, cfg.extra_data
    )
    units = data.make_units(documents, cfg.unit)
    examples, truncated = data.tokenize_units(units, tokenizer, cfg.max_length)
    if truncated:
        logger.warning(
            "%d of %d units were longer than max_length=%d tokens and were truncated",
            truncated,
            len(units),
            cfg.max_length,
        )
    steps = cfg.num_steps(len(examples))
    lengths = [len(example["input_ids"]) for example in examples]
    order = data.training_order(lengths, steps * cfg.batch_size, cfg.batch_size, cfg.train_seed)
    batches = [order[step * cfg.batch_size : (step + 1) * cfg.batch_size] for step in range(steps)]
    return TrainingPlan(
        documents=len(documents),
        units=len(units),
        family_provenance=family_provenance,
        extra_files=extra_files,
        examples=examples,
        truncated=truncated,
        steps=steps,
        order=order,
        padding=data.padding_stats(lengths, order, micro_batch_size),
        tokens_per_step=[sum(lengths[i] for i in batch) for batch in batches],
    )


def run(cfg: FinetuneConfig) -> Path:
    """Train, save, check and publish the adapter; return its directory."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, set_seed
    from transformers.trainer_callback import PrinterCallback

    from finetune import data

    started = time.time()
    if cfg.resume and (cfg.output_path / PROVENANCE_FILE).is_file():
        # Killed after the output was published but before the work directory was removed.
        logger.info("%s is already complete; nothing to resume", cfg.output_path)
        shutil.rmtree(cfg.work_path, ignore_errors=True)
        return cfg.output_path
    resume_from = check_directories(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    micro_batch_size = cfg.micro_batch_size or max(cfg.batch_size // world_size, 1)
    if cfg.batch_size % (micro_batch_size * world_size):
        raise FinetuneError(
            f"batch_size={cfg.batch_size} is not a multiple of micro_batch_size={micro_batch_size} x {world_size} "
            "processes; change batch_size or micro_batch_size"
        )
    accumulation = cfg.batch_size // (micro_batch_size * world_size)
    model_path = resolve_model(cfg.model)
    precision = resolve_precision(cfg.precision)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    plan = plan_training(cfg, tokenizer, micro_batch_size)

    args = _training_arguments(cfg, micro_batch_size, accumulation, plan.steps, precision)
    if args.world_size != world_size:
        raise FinetuneError(f"WORLD_SIZE={world_size} but the Trainer sees {args.world_size} processes")
    is_main = args.process_index == 0
    if is_main:
        prepare_directories(cfg, resume_from)
        logger.info(
            "%s: %d documents -> %d %s units (%d tokens); %d steps of %d units = %d process(es) x %d units x %d "
            "accumulation, %.1f epochs, %s, padding %.1f%% of processed tokens%s",
            cfg.family,
            plan.documents,
            plan.units,
            cfg.unit,
            sum(len(e["input_ids"]) for e in plan.examples),
            plan.steps,
            cfg.batch_size,
            world_size,
            micro_batch_size,
            accumulation,
            plan.epochs,
            precision,
            100 * plan.padding["padding_fraction"],
            f"; resuming from {resume_from.name}" if resume_from else "",
        )
    args.distributed_state.wait_for_everyone()
    if world_size > 1:
        logger.info(
            "process %d of %d (%s backend, %s) ready",
            args.process_index,
            world_size,
            args.distributed_state.backend,
            args.device,
        )

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.config.use_cache = False
    set_seed(cfg.train_seed)  # LoRA's A matrices are drawn here
    model = get_peft_model(model, cfg.to_lora_config())
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=[plan.examples[i] for i in plan.order],
        data_collator=data.PaddingCollator(pad_token_id),
        callbacks=[_log_callback(plan.tokens_per_step)],
    )
    trainer.remove_callback(PrinterCallback)
    train_started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.perf_counter() - train_started
    if not is_main:
        return cfg.output_path

    start_step = checkpoint_step(resume_from) if resume_from else 0
    runtime = {
        "world_size": world_size,
        "micro_batch_size": micro_batch_size,
        "gradient_accumulation_steps": accumulation,
        "precision": precision,
        "device": str(args.device),
        "versions": _versions(),
    }
    results = {
        "units": len(plan.examples),
        "units_truncated": plan.truncated,
        "steps": plan.steps,
        "epochs": plan.epochs,
        "final_loss": next((e["loss"] for e in reversed(trainer.state.log_history) if "loss" in e), float("nan")),
        "loss_history": [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e],
        "tokens_seen": plan.padding["tokens"],
        "padding_tokens": plan.padding["padding_tokens"],
        "padding_fraction": plan.padding["padding_fraction"],
        "train_seconds": train_seconds,
        "tokens_per_second": sum(plan.tokens_per_step[start_step:]) / train_seconds,
        "resumed_from_step": start_step,
    }
    # Without keep_fp32_wrapper=False the model's forward stays wrapped in accelerate's bf16 autocast.
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    output = _save_checked(cfg, model, model_path, plan, pad_token_id, results, runtime, started)
    if not cfg.keep_checkpoints:
        shutil.rmtree(cfg.work_path, ignore_errors=True)
    return output


def _save_checked(
    cfg, model, model_path: str, plan: TrainingPlan, pad_token_id: int, results, runtime, started
) -> Path:
    """Save the adapter to a temporary sibling, check it, add provenance and model card, rename into place."""
    from finetune import provenance, verify

    step = max(len(plan.examples) // cfg.verify_texts, 1)
    verify_examples = plan.examples[::step][: cfg.verify_texts]
    trained_scores = verify.mean_loglik_per_token(model, verify_examples, pad_token_id)
    output = cfg.output_path
    staging = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model.save_pretrained(str(staging))
        results["loglik_check"] = verify.check_adapter(
            model_path, staging, verify_examples, pad_token_id, trained_scores, cfg.min_loglik_change
        )
        results["wall_time_seconds"] = time.time() - started
        options = provenance.non_default_options(cfg.family, plan.family_provenance["options"])
        record = {
            "kind": "lm-eval-icl-ft LoRA adapter",
            "base_model": provenance.base_model_record(model_path),
            "data": {**plan.family_provenance, "unit": cfg.unit, "extra_files": [vars(f) for f in plan.extra_files]},
            "config": cfg.to_dict(),
            "data_seed": cfg.data_seed,
            "train_seed": cfg.train_seed,
            "results": results,
            "runtime": runtime,
            "lm_eval_command": provenance.lm_eval_command(model_path, output, cfg.family, cfg.data_seed, options),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json_atomic(staging / PROVENANCE_FILE, record, sort_keys=True)
        (staging / "README.md").write_text(provenance.model_card(record))
        _publish(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("adapter written to %s; score it with: %s", output, record["lm_eval_command"])
    return output


def _publish(staging: Path, output: Path) -> None:
    """Rename the finished directory into place; an old output (--overwrite) goes only after."""
    if output.exists():
        retired = output.with_name(f".{output.name}.old-{os.getpid()}")
        os.rename(output, retired)
        os.rename(staging, output)
        shutil.rmtree(retired)
    else:
        os.rename(staging, output)
