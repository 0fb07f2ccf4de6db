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

VERSION = "0.1.1"  # 0.1.1: lost_entity applies to one-sentence sources only
SUMMARY_EXAMPLES = 5  # kept and dropped sentences quoted in the summary


def run(cfg: AugmentConfig, generate=None) -> dict[str, Any]:
    """Run one augmentation; returns the summary (also written next to the output).

    `generate` replaces the configured back end (any `generate(prompts, params)` callable).
    Raises OutputError, BackendError, ValueError or OSError with a one-line message.
    """
    from augment.io import ResumableWriter
    from augment.items import source_items
    from augment.parsing import DROP_REASONS
    from augment.prompting import prompt_for, template_sha256
    from icl_ft_common.artifacts import dropped_path, summary_path
    from lm_eval_tasks.api import generate_family

    started = time.monotonic()
    data = generate_family(cfg.family, cfg.data_seed, **cfg.family_options)
    items = source_items(data)[: cfg.limit]
    writer = ResumableWriter(cfg.output_path, cfg.settings(), overwrite=cfg.overwrite, saved_settings=saved_settings)
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
    from augment.backends import load_generator

    model = cfg.model
    if model is None:
        from icl_ft_common.embedded_model import ensure_checkpoint

        model = str(ensure_checkpoint())
    return load_generator(cfg.backend, model, dtype=cfg.dtype, batch_size=cfg.batch_size)
