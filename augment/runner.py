"""One augmentation run: a family's source items -> generations -> filtered rows, resumably.

    import augment
    summary = augment.run(augment.AugmentConfig(mode="local", family="reversal", limit=4))

Writes OUTPUT (JSONL rows with at least "text", as `finetune --extra-data` reads them),
OUTPUT's `.summary.json` (kept/dropped counts by reason, provenance) and `.dropped.jsonl`
(every filtered-out sentence with its reason). An interrupted run resumes where it stopped
when rerun with the same settings. The model defaults to the embedded SmolLM2.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

from augment.config import AugmentConfig, saved_settings

logger = logging.getLogger("augment")

VERSION = "0.1.2"  # 0.1.2: one sampling seed per prompt; 0.1.1: lost_entity applies to one-sentence sources only
# Under sampling, how each prompt's random draws are seeded (augment.items.prompt_seed); part of the
# settings a partial output is resumed under, so a partial seeded per chunk (before 0.1.2) is not continued.
SAMPLING_SEEDS = "per-prompt: sha256(sample_seed:item:sample)"
SUMMARY_EXAMPLES = 5  # kept and dropped sentences quoted in the summary


def run(cfg: AugmentConfig, generate=None) -> dict[str, Any]:
    """Run one augmentation; returns the summary (also written next to the output).

    `generate` replaces the configured back end (any `generate(prompts, params)` callable).
    Raises OutputError, BackendError, ValueError or OSError with a one-line message.
    """
    from augment.io import OutputError, ResumableWriter
    from augment.items import source_items
    from augment.parsing import DROP_REASONS
    from augment.prompting import prompt_for, template_sha256
    from icl_ft_common.artifacts import dropped_path, summary_path
    from lm_eval_tasks.api import generate_family

    started = time.monotonic()
    try:
        data = generate_family(cfg.family, cfg.data_seed, **cfg.family_options)
    except ValueError as err:  # a family option the generator rejects (e.g. num_facts=-3)
        raise OutputError(f"family {cfg.family!r}: {err}") from None
    items = source_items(data)[: cfg.limit]
    # Output and partial are checked before any model is loaded; the writer writes nothing yet.
    settings = {**cfg.settings(), **({"sampling_seeds": SAMPLING_SEEDS} if cfg.temperature > 0 else {})}
    writer = ResumableWriter(cfg.output_path, settings, overwrite=cfg.overwrite, saved_settings=saved_settings)
    context_info = None
    prompt = prompt_for(cfg.mode, cfg.family)
    if cfg.mode == "oracle":
        from augment.oracle import ORACLE_GENERATOR, run_oracle

        run_oracle(cfg, data, items, writer)
        generator_name = ORACLE_GENERATOR
    else:
        if generate is None:
            generate = load_backend(cfg)
        generator_name = getattr(generate, "name", type(generate).__name__)
        if cfg.mode == "local":
            from augment.local import run_local

            run_local(cfg, items, generate, writer)
        else:
            from augment.global_ import run_global

            context_info = run_global(cfg, data, items, generate, writer)

    rows, dropped = writer.collect("rows"), writer.collect("dropped")
    reasons = collections.Counter(entry["reason"] for entry in dropped)
    summary = {
        "output": str(cfg.output_path),
        "dropped_file": str(dropped_path(cfg.output_path)),
        "mode": cfg.mode,
        "generator": generator_name,
        "prompt_version": prompt.version if prompt else None,
        "prompt_sha256": template_sha256(prompt.version, prompt.package) if prompt else None,
        "sampling": cfg.sampling() if prompt else None,
        "sample_seed": cfg.sample_seed if prompt else None,
        "sampling_seeds": SAMPLING_SEEDS if prompt and cfg.temperature > 0 else None,
        "data": data.provenance(),
        "augment_version": VERSION,
        "items": len(items),
        "generations": sum(record["generations"] for record in writer.records.values()),
        "sentences": len(rows) + len(dropped),
        "kept": len(rows),
        "dropped": len(dropped),
        "kept_by_kind": dict(collections.Counter(row["kind"] for row in rows)),
        "dropped_by_reason": {reason: reasons[reason] for reason in DROP_REASONS},
        "global_context": context_info,
        "settings": cfg.settings(),
        "seconds_this_run": round(time.monotonic() - started, 1),
        "examples": {
            "kept": [row["text"] for row in rows[:SUMMARY_EXAMPLES]],
            "dropped": [f"[{entry['reason']}] {entry['text']}" for entry in dropped[:SUMMARY_EXAMPLES]],
        },
    }
    writer.finish(summary)
    logger.info("wrote %s (%d rows) and %s", cfg.output_path, len(rows), summary_path(cfg.output_path))
    return summary


def load_backend(cfg: AugmentConfig):
    """The configured generation back end on the configured model (default: the embedded SmolLM2)."""
    from augment.backends import BackendError, load_generator
    from icl_ft_common.checks import InputError, check_model_source

    model = cfg.model
    if model is None:
        from icl_ft_common.embedded_model import EmbeddedModelError, ensure_checkpoint

        try:
            model = str(ensure_checkpoint())
        except EmbeddedModelError as err:
            raise BackendError(str(err)) from None
    try:
        check_model_source(model)
    except InputError as err:
        raise BackendError(str(err)) from None
    return load_generator(cfg.backend, model, dtype=cfg.dtype, batch_size=cfg.batch_size)
