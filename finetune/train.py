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

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from finetune import FinetuneError
from finetune.config import EMBEDDED_MODEL, RUN_CONTROL_FIELDS, FinetuneConfig

logger = logging.getLogger(__name__)

RUN_CONFIG_FILE = "run_config.json"


def resolve_model(model: str) -> str:
    if model != EMBEDDED_MODEL:
        return model
    from icl_ft.embedded_model import EmbeddedModelError, ensure_checkpoint

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
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def is_complete_checkpoint(directory: Path) -> bool:
    """The Trainer writes trainer_state.json last: a checkpoint is usable once it parses."""
    try:
        json.loads((directory / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return (directory / "optimizer.pt").is_file() and any(directory.glob("rng_state*.pth"))


def last_complete_checkpoint(checkpoints: Path) -> Path | None:
    candidates = [p for p in checkpoints.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    for candidate in sorted(candidates, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        if is_complete_checkpoint(candidate):
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
        raise FinetuneError(f"output_dir {output} already exists; pass --overwrite to replace it")
    if cfg.overwrite or not work.exists():
        return None
    has_checkpoints = checkpoints.is_dir() and any(checkpoints.iterdir())
    if has_checkpoints and not cfg.resume:
        raise FinetuneError(
            f"{work} holds checkpoints of an unfinished run; pass --resume to continue it or --overwrite to start over"
        )
    saved_path = work / RUN_CONFIG_FILE
    if cfg.resume and saved_path.is_file():
        differences = _config_differences(json.loads(saved_path.read_text()), cfg.to_dict())
        if differences:
            raise FinetuneError(f"--resume with settings that differ from the interrupted run: {'; '.join(differences)}")
    resume_from = last_complete_checkpoint(checkpoints) if has_checkpoints else None
    if cfg.resume and resume_from is None:
        logger.warning("--resume: no complete checkpoint in %s; starting from the beginning", checkpoints)
    return resume_from


def prepare_directories(cfg: FinetuneConfig, resume_from: Path | None) -> None:
    """Main process only: clear what a previous run left behind and record this run's config."""
    from finetune.provenance import write_json_atomic

    output, work = cfg.output_path, cfg.work_path
    checkpoints = work / "checkpoints"
    if cfg.overwrite:
        shutil.rmtree(work, ignore_errors=True)
    checkpoints.mkdir(parents=True, exist_ok=True)
    # A kill -9 mid-save can leave a checkpoint without its trainer_state.json; the
    # Trainer would count it as the newest when rotating, so remove it.
    newest_step = int(resume_from.name.split("-")[-1]) if resume_from else -1
    for stale in checkpoints.glob("checkpoint-*"):
        if stale.name.split("-")[-1].isdigit() and int(stale.name.split("-")[-1]) > newest_step:
            shutil.rmtree(stale)
    for leftover in [*output.parent.glob(f".{output.name}.tmp-*"), *output.parent.glob(f".{output.name}.old-*")]:
        shutil.rmtree(leftover, ignore_errors=True)  # left by killed runs
    write_json_atomic(work / RUN_CONFIG_FILE, cfg.to_dict())


def _training_arguments(cfg: FinetuneConfig, micro_batch_size: int, accumulation: int, steps: int, precision: str):
    import dataclasses

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
        seed=cfg.seed,
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
            logger.info("step %d/%d loss %.4f lr %.2e%s", step, state.max_steps, logs["loss"], logs.get("learning_rate", 0), rate)
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


def run(cfg: FinetuneConfig) -> Path:
    """Train, save, check and publish the adapter; return its directory."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, set_seed
    from transformers.trainer_callback import PrinterCallback

    from finetune import data, provenance, verify

    started = time.time()
    if cfg.resume and (cfg.output_path / provenance.PROVENANCE_FILE).is_file():
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

    documents, family_provenance, extra_files = data.load_documents(
        cfg.family, cfg.data_seed, cfg.family_options, cfg.extra_data
    )
    units = data.make_units(documents, cfg.unit)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    examples, truncated = data.tokenize_units(units, tokenizer, cfg.max_length)
    if truncated:
        logger.warning("%d of %d units were longer than max_length=%d tokens and were truncated", truncated, len(units), cfg.max_length)
    steps = cfg.num_steps(len(examples))
    lengths = [len(example["input_ids"]) for example in examples]
    order = data.training_order(lengths, steps * cfg.batch_size, cfg.batch_size, cfg.seed)
    padding = data.padding_stats(lengths, order, micro_batch_size)
    tokens_per_step = [sum(lengths[i] for i in order[s * cfg.batch_size : (s + 1) * cfg.batch_size]) for s in range(steps)]

    args = _training_arguments(cfg, micro_batch_size, accumulation, steps, precision)
    if args.world_size != world_size:
        raise FinetuneError(f"WORLD_SIZE={world_size} but the Trainer sees {args.world_size} processes")
    is_main = args.process_index == 0
    if is_main:
        prepare_directories(cfg, resume_from)
    args.distributed_state.wait_for_everyone()
    if is_main:
        logger.info(
            "%s: %d documents -> %d %s units (%d tokens); %d steps of %d units (%d process(es) x %d x %d accumulation), "
            "%.1f epochs, %s, padding %.1f%% of processed tokens%s",
            cfg.family, len(documents), len(units), cfg.unit, sum(lengths), steps, cfg.batch_size, world_size,
            micro_batch_size, accumulation, steps * cfg.batch_size / len(examples), precision,
            100 * padding["padding_fraction"], f"; resuming from {resume_from.name}" if resume_from else "",
        )  # fmt: skip

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.config.use_cache = False
    set_seed(cfg.seed)  # LoRA's A matrices are drawn here
    model = get_peft_model(model, cfg.to_lora_config())
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=[examples[i] for i in order],
        data_collator=data.PaddingCollator(pad_token_id),
        callbacks=[_log_callback(tokens_per_step)],
    )
    trainer.remove_callback(PrinterCallback)
    train_started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.perf_counter() - train_started
    if not is_main:
        return cfg.output_path

    start_step = int(resume_from.name.split("-")[-1]) if resume_from else 0
    losses = [(entry["step"], entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    verify_examples = [examples[i] for i in range(0, len(examples), max(len(examples) // cfg.verify_texts, 1))][: cfg.verify_texts]
    # Without keep_fp32_wrapper=False the model's forward stays wrapped in accelerate's bf16 autocast.
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    trained_scores = verify.mean_loglik_per_token(model, verify_examples, pad_token_id)

    output = cfg.output_path
    staging = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model.save_pretrained(str(staging))
        check = verify.check_adapter(model_path, staging, verify_examples, pad_token_id, trained_scores, cfg.min_loglik_change)
        record = {
            "kind": "lm-eval-icl-ft LoRA adapter",
            "base_model": provenance.base_model_record(model_path),
            "data": {
                **family_provenance,
                "unit": cfg.unit,
                "extra_files": [vars(extra) for extra in extra_files],
            },
            "config": cfg.to_dict(),
            "seed": cfg.seed,
            "results": {
                "units": len(examples),
                "units_truncated": truncated,
                "steps": steps,
                "epochs": steps * cfg.batch_size / len(examples),
                "final_loss": losses[-1][1] if losses else float("nan"),
                "loss_history": losses,
                "tokens_seen": padding["tokens"],
                "padding_tokens": padding["padding_tokens"],
                "padding_fraction": padding["padding_fraction"],
                "wall_time_seconds": time.time() - started,
                "train_seconds": train_seconds,
                "tokens_per_second": sum(tokens_per_step[start_step:]) / train_seconds,
                "resumed_from_step": start_step,
                "loglik_check": check,
            },
            "runtime": {
                "world_size": world_size,
                "micro_batch_size": micro_batch_size,
                "gradient_accumulation_steps": accumulation,
                "precision": precision,
                "device": str(args.device),
                "versions": _versions(),
            },
            "lm_eval_command": provenance.lm_eval_command(
                model_path, output, cfg.family, cfg.data_seed,
                provenance.non_default_options(cfg.family, family_provenance["options"]),
            ),  # fmt: skip
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        provenance.write_json_atomic(staging / provenance.PROVENANCE_FILE, record)
        (staging / "README.md").write_text(provenance.model_card(record))
        _publish(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not cfg.keep_checkpoints:
        shutil.rmtree(cfg.work_path, ignore_errors=True)
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
