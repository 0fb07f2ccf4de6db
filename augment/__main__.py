"""`python -m augment`: augmented finetuning data from a model's in-context inferences.

    python -m augment --mode local --family reversal --limit 4 --output /tmp/reversal-local.jsonl
    python -m augment --mode global --family reversal --context facts --limit 4
    python -m augment --mode oracle --family reversal       # the symbolic upper-bound control
    python -m augment --config augment.yaml --temperature 0.7 --num-samples 2

Writes OUTPUT (JSONL rows with at least "text", as `finetune --extra-data` reads them),
OUTPUT's `.summary.json` (kept/dropped counts by reason, provenance) and `.dropped.jsonl`
(every filtered-out sentence with its reason). An interrupted run resumes where it
stopped when rerun with the same settings. The model defaults to the embedded SmolLM2.
"""

from __future__ import annotations

import collections
import logging
import sys
import time
from typing import Any

from augment.config import AugmentConfig, ConfigError, config_from_args

logger = logging.getLogger("augment")

SUMMARY_EXAMPLES = 5  # kept and dropped sentences quoted in the summary


def main(cfg: AugmentConfig, generate=None) -> dict[str, Any]:
    """Run one augmentation; returns the summary (also written next to the output).

    `generate` replaces the configured back end (any `generate(prompts, params)` callable).
    """
    from augment import __version__
    from augment.io import ResumableWriter, dropped_path, summary_path
    from augment.items import source_items
    from augment.parsing import DROP_REASONS
    from augment.prompting import GLOBAL_PROMPT, LOCAL_PROMPT, template_sha256
    from lm_eval_tasks.api import generate_family

    started = time.monotonic()
    data = generate_family(cfg.family, cfg.data_seed, **cfg.family_option)
    items = source_items(data)[: cfg.limit]
    writer = ResumableWriter(cfg.output_path, cfg.settings(), overwrite=cfg.overwrite)
    context_info = None
    prompt = {"local": LOCAL_PROMPT, "global": GLOBAL_PROMPT}.get(cfg.mode)
    if cfg.mode == "oracle":
        from augment.oracle import ORACLE_GENERATOR, run_oracle

        run_oracle(cfg, data, items, writer)
        generator_name = ORACLE_GENERATOR
    else:
        if generate is None:
            generate = _load_backend(cfg)
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
        "prompt_sha256": template_sha256(prompt.version) if prompt else None,
        "sampling": cfg.sampling() if prompt else None,
        "seed": cfg.seed if prompt else None,
        "data": data.provenance(),
        "augment_version": __version__,
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


def _load_backend(cfg: AugmentConfig):
    from augment.backends import load_generator

    model = cfg.model
    if model is None:
        from icl_ft.embedded_model import ensure_checkpoint

        model = str(ensure_checkpoint())
    return load_generator(cfg.backend, model, dtype=cfg.dtype, batch_size=cfg.batch_size)


def cli(argv: list[str] | None = None) -> int:
    from augment.backends import BackendError
    from augment.io import OutputError

    try:
        cfg, args = config_from_args(argv)
    except ConfigError as err:
        print(f"augment: error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        summary = main(cfg)
    except (ValueError, OSError, OutputError, BackendError) as err:
        print(f"augment: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"augment: interrupted; rerun the same command to resume from {cfg.output_path}.partial", file=sys.stderr)
        return 130
    dropped = ", ".join(f"{reason} {n}" for reason, n in summary["dropped_by_reason"].items() if n)
    print(f"{summary['output']}: {summary['kept']} rows kept of {summary['sentences']} sentences "
          f"from {summary['items']} items" + (f" (dropped: {dropped})" if dropped else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(cli())
