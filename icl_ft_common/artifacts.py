"""The names of the files this project writes and reads back, in one place.

A writer and its readers (finetune and the study, augment and the study, the study and
`icl-ft compare`) agree on a file only through these names.
"""

from __future__ import annotations

from pathlib import Path

# Provenance of a converted model or a trained adapter: how it was made (JSON).
PROVENANCE_FILE = "icl_ft_provenance.json"
# finetune's record of the config its checkpoints belong to (in OUTPUT.work/).
RUN_CONFIG_FILE = "run_config.json"

# augment writes OUTPUT (JSONL rows) with two sidecars, and OUTPUT.partial while it runs.
SUMMARY_SUFFIX = ".summary.json"
DROPPED_SUFFIX = ".dropped.jsonl"
PARTIAL_SUFFIX = ".partial"

# A study run directory.
PLAN_FILE = "study.json"
AUGMENT_DIR = "augment"
ADAPTERS_DIR = "adapters"
CELLS_DIR = "cells"
CELL_FILE = "cell.json"  # a scoring cell's state
LM_EVAL_DIR = "lm_eval"  # lm-eval's own results and samples files of a cell

# `icl-ft compare`'s output.
REPORT_FILE = "report.md"
FIGURE_FILE = "figure.png"


def summary_path(output: Path) -> Path:
    """`x.jsonl` -> `x.summary.json`: kept/dropped counts and provenance of an augmentation."""
    return output.with_name(output.stem + SUMMARY_SUFFIX)


def dropped_path(output: Path) -> Path:
    """`x.jsonl` -> `x.dropped.jsonl`: every filtered-out sentence with its reason, for auditing."""
    return output.with_name(output.stem + DROPPED_SUFFIX)


def partial_path(output: Path) -> Path:
    """`x.jsonl` -> `x.jsonl.partial`: an augmentation's progress while it runs."""
    return output.with_name(output.name + PARTIAL_SUFFIX)
