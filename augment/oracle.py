"""Oracle augmentation: what the family's generator knows follows from its training facts.

The logically valid rephrasings, reversals and deductions (`FamilyData.oracle`), written
with `generator: "oracle"` to their own file. It is the upper-bound control for augmented
finetuning (what perfect in-context inference would add) and is never mixed with a
model's output.
"""

from __future__ import annotations

import logging

from augment.config import AugmentConfig
from augment.io import ResumableWriter
from augment.items import SourceItem

logger = logging.getLogger(__name__)

ORACLE_GENERATOR = "oracle"


def run_oracle(cfg: AugmentConfig, data, items: list[SourceItem], writer: ResumableWriter) -> None:
    if not data.oracle:
        raise ValueError(f"family {cfg.family!r} has no oracle statements to write")
    by_item: dict[str, list[dict]] = {}
    for row in data.oracle:
        by_item.setdefault(row["source_id"], []).append(row)
    for item in items:
        if writer.is_done(item.id):
            continue
        rows = [
            {
                **row,
                "mode": "oracle",
                "generator": ORACLE_GENERATOR,
                "prompt_version": None,
                "sampling": None,
                "sample_seed": None,
                "family": cfg.family,
                "data_seed": cfg.data_seed,
            }
            for row in by_item.get(item.id, [])
        ]
        writer.add(item.id, rows, [], generations=0)
    logger.info(
        "oracle: %d statement(s) for %d item(s)", sum(len(r["rows"]) for r in writer.records.values()), len(items)
    )
