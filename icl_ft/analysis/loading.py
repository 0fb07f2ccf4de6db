"""Read lm-eval output (a study RUN_DIR of cells, or results dirs made by hand) into a tidy
list of scored samples, one row per (run, task, doc).

    >>> loaded = load_runs([Path("runs/study-1")])
    >>> loaded.samples[0].condition, loaded.samples[0].split, loaded.samples[0].correct

Only lm-eval's own files are read: `results_<timestamp>.json` and, written next to it by
`--log_samples`, `samples_<task>_<timestamp>.jsonl`. Scores come from the samples (the
per-doc `acc`), so that conditions can be paired item by item.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CONDITIONS = ("base", "icl", "ft", "ft_local", "ft_global", "ft_oracle")
TASK_PREFIX = "icl_ft_"
TASK_SUFFIXES = {"_icl": "icl", "_ft": "ft"}


class CompareError(ValueError):
    """Bad input for `icl-ft compare`; the message is one line naming the file and the fix."""


@dataclasses.dataclass(frozen=True)
class Sample:
    condition: str  # base / icl / ft / ft_local ... or ft:<adapter dir name> for hand-made runs
    seed: int | None
    family: str
    split: str
    key: str  # join key across conditions: the doc's hash (same doc under _icl and _ft)
    doc_id: int
    correct: bool
    correct_norm: bool | None
    n_choices: int
    item_id: str | None  # items asked in several phrasings share it (semantic family)
    run: str  # the results file this came from


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """Provenance of one lm-eval results file."""

    results_file: str
    conditions: tuple[str, ...]
    seed: int | None
    model: str
    adapter: str | None
    tasks: dict[str, Any]  # task -> version
    lm_eval_version: str
    transformers_version: str
    limit: float | None
    cell: str | None = None


@dataclasses.dataclass(frozen=True)
class MissingCell:
    cell: str
    condition: str
    family: str
    seed: int | None
    status: str
    error: str | None


@dataclasses.dataclass
class Loaded:
    samples: list[Sample]
    runs: list[RunInfo]
    missing: list[MissingCell]
    join_mismatches: int = 0


def parse_task(task: str) -> tuple[str, str, str] | None:
    """`icl_ft_<family>_<split>_<icl|ft>` -> (family, split, "icl"|"ft"); None for groups
    and foreign tasks. Family names contain underscores (reversal_curse), so the family is
    the longest known family name that prefixes the rest."""
    from lm_eval_tasks.api import FAMILIES

    if not task.startswith(TASK_PREFIX):
        return None
    rest = task.removeprefix(TASK_PREFIX)
    for suffix, kind in TASK_SUFFIXES.items():
        if rest.endswith(suffix):
            rest = rest.removesuffix(suffix)
            break
    else:
        return None
    for family in sorted(FAMILIES, key=len, reverse=True):
        if rest.startswith(family + "_"):
            split = rest.removeprefix(family + "_")
            return (family, split, kind) if split else None
    return None


def _read_json(path: Path, fix: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CompareError(f"{path}: not valid JSON ({err}); {fix}") from None


def _infer_condition(kind: str, adapter: str | None) -> str:
    adapter_label = f"ft:{Path(adapter.rstrip('/')).name}" if adapter else None
    if kind == "icl":
        return f"icl+{adapter_label}" if adapter_label else "icl"
    return adapter_label or "base"


def _newest_results(directory: Path) -> Path:
    # lm-eval's timestamps (2025-05-01T12-00-00.123456) sort as strings.
    return max(directory.glob("results_*.json"), key=lambda p: p.name)


def _read_run(
    results_file: Path, condition: str | None = None, seed: Any = ..., cell: str | None = None
) -> tuple[RunInfo, list[Sample]]:
    """One results file and its samples files. `condition`/`seed` come from a study cell;
    for hand-made runs they are inferred from the task names and model_args."""
    fix = "rerun that lm_eval command (or delete the file if an older results file is also there)"
    results = _read_json(results_file, fix)
    if not isinstance(results, dict) or not isinstance(results.get("configs"), dict):
        raise CompareError(f"{results_file}: not an lm-eval results file (no 'configs'); {fix}")
    config = results.get("config") or {}
    model_args = config.get("model_args") or {}
    if isinstance(model_args, str):  # older lm-eval kept the raw "k=v,k=v" string
        model_args = dict(part.split("=", 1) for part in model_args.split(",") if "=" in part)
    adapter = model_args.get("peft")
    timestamp = results_file.name.removeprefix("results_").removesuffix(".json")

    samples: list[Sample] = []
    tasks, conditions, seeds = {}, [], set()
    for task, task_config in sorted(results["configs"].items()):
        parsed = parse_task(task)
        if parsed is None:
            logger.info("%s: skipping task %s (not an icl_ft task)", results_file, task)
            continue
        family, split, kind = parsed
        if condition is not None and (kind == "icl") != (condition == "icl"):
            # A study cell scores one condition's tasks; a stray task would be mislabelled.
            logger.warning("%s: skipping task %s, not a task of the cell's condition %s", results_file, task, condition)
            continue
        task_condition = condition or _infer_condition(kind, adapter)
        task_seed = seed if seed is not ... else ((task_config.get("metadata") or {}).get("seed"))
        seeds.add(task_seed)
        conditions.append(task_condition)
        tasks[task] = (results.get("versions") or {}).get(task)
        samples_file = results_file.parent / f"samples_{task}_{timestamp}.jsonl"
        if not samples_file.exists():
            raise CompareError(
                f"{results_file}: no samples for task {task} (expected {samples_file.name}); "
                "rerun lm_eval with --log_samples"
            )
        samples += _read_samples(samples_file, task_condition, task_seed, family, split, str(results_file))
    if not tasks:
        raise CompareError(f"{results_file}: no icl_ft_* task in it; run lm_eval with --tasks icl_ft_<family>...")
    info = RunInfo(
        results_file=str(results_file),
        conditions=tuple(dict.fromkeys(conditions)),
        seed=next(iter(seeds)) if len(seeds) == 1 else None,
        model=str(model_args.get("pretrained", results.get("model_name", "?"))),
        adapter=adapter,
        tasks=tasks,
        lm_eval_version=str(results.get("lm_eval_version", "?")),
        transformers_version=str(results.get("transformers_version", "?")),
        limit=config.get("limit"),
        cell=cell,
    )
    return info, samples


def _read_samples(path: Path, condition, seed, family, split, run) -> list[Sample]:
    fix = "rerun lm_eval with --log_samples for that task"
    rows, seen = [], set()
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise CompareError(f"{path}: unreadable ({err}); {fix}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            doc_id = row["doc_id"]
            # Several filters give several rows per doc; only "none" is scored here.
            if row.get("filter", "none") != "none" or doc_id in seen:
                continue
            seen.add(doc_id)
            doc = row.get("doc") or {}
            # doc_hash hashes the doc, identical under the _icl and _ft task of a split; with
            # no hash (older lm-eval) fall back to the doc id, checked against the doc's text.
            key = row.get("doc_hash") or f"doc_id:{doc_id}|{json.dumps([doc.get('query'), doc.get('choices')])}"
            n_choices = len(row.get("arguments") or doc.get("choices") or ())
            rows.append(
                Sample(
                    condition=condition,
                    seed=seed,
                    family=family,
                    split=split,
                    key=key,
                    doc_id=int(doc_id),
                    correct=bool(row["acc"]),
                    correct_norm=bool(row["acc_norm"]) if "acc_norm" in row else None,
                    n_choices=n_choices,
                    item_id=doc.get("item_id"),
                    run=run,
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise CompareError(f"{path}:{number}: not an lm-eval sample ({type(err).__name__}: {err}); {fix}") from None
    if not rows:
        raise CompareError(f"{path}: no samples in it; {fix}")
    return rows


def is_study_dir(path: Path) -> bool:
    return (path / "cells").is_dir()


def _load_study(run_dir: Path) -> tuple[list[RunInfo], list[Sample], list[MissingCell]]:
    runs, samples, missing = [], [], []
    for cell_json in sorted((run_dir / "cells").glob("*/cell.json")):
        cell_dir = cell_json.parent
        cell = _read_json(cell_json, "rerun that cell of the study (or delete its directory)")
        if not isinstance(cell, dict) or "condition" not in cell or "status" not in cell:
            raise CompareError(
                f"{cell_json}: not a study cell record (needs 'condition' and 'status'); rerun that cell"
            )
        if cell["status"] != "done":
            missing.append(
                MissingCell(
                    cell_dir.name,
                    cell["condition"],
                    cell.get("family", "?"),
                    cell.get("seed"),
                    cell["status"],
                    cell.get("error"),
                )
            )
            continue
        model_dirs = sorted({p.parent for p in (cell_dir / "lm_eval").rglob("results_*.json")})
        if not model_dirs:
            raise CompareError(
                f"{cell_dir}: marked done but no results_*.json under {cell_dir / 'lm_eval'}; rerun that cell"
            )
        for model_dir in model_dirs:
            info, rows = _read_run(
                _newest_results(model_dir), condition=cell["condition"], seed=cell.get("seed"), cell=cell_dir.name
            )
            runs.append(info)
            samples += rows
    if not runs and not missing:
        raise CompareError(f"{run_dir}: no cells/*/cell.json in it; pass the RUN_DIR that `icl-ft study` wrote")
    return runs, samples, missing


def load_runs(paths: list[Path]) -> Loaded:
    """Every run under `paths`: study RUN_DIRs (with `cells/`), lm-eval output dirs, or
    results_*.json files. In a plain dir the newest results file of each model dir counts."""
    runs, samples, missing, read = [], [], [], set()
    for path in paths:
        if not path.exists():
            raise CompareError(f"{path}: no such file or directory")
        if path.is_dir() and is_study_dir(path):
            study_runs, study_samples, study_missing = _load_study(path)
            runs += study_runs
            samples += study_samples
            missing += study_missing
            continue
        if path.is_file():
            results_files = [path]
        else:
            results_files = [_newest_results(d) for d in sorted({p.parent for p in path.rglob("results_*.json")})]
        if not results_files:
            raise CompareError(f"{path}: no lm-eval results_*.json under it; pass the --output_path of an lm_eval run")
        for results_file in results_files:
            if results_file.resolve() in read:  # the same run reached through two paths
                continue
            read.add(results_file.resolve())
            info, rows = _read_run(results_file)
            runs.append(info)
            samples += rows
    _check_duplicates(samples)
    samples, mismatches = _check_doc_id_joins(samples)
    return Loaded(samples, runs, missing, mismatches)


def _check_duplicates(samples: list[Sample]) -> None:
    seen: dict[tuple, str] = {}
    for s in samples:
        unit = (s.condition, s.seed, s.family, s.split)
        if seen.setdefault(unit, s.run) != s.run:
            raise CompareError(
                f"condition {s.condition} (seed {s.seed}) scores {s.family}/{s.split} in two runs: {seen[unit]} and "
                f"{s.run}; pass only one of them"
            )


def _check_doc_id_joins(samples: list[Sample]) -> tuple[list[Sample], int]:
    """Fallback keys (doc id + the doc's query/choices) must agree across conditions for
    the same doc id; rows whose doc text differs are counted and left unpaired."""
    fallback = [s for s in samples if s.key.startswith("doc_id:")]
    if not fallback:
        return samples, 0
    texts: dict[tuple, set[str]] = {}
    for s in fallback:
        texts.setdefault((s.family, s.split, s.seed, s.doc_id), set()).add(s.key)
    mismatched = {k for k, v in texts.items() if len(v) > 1}
    if mismatched:
        logger.warning("%d docs share a doc id but differ in query/choices across runs; left unpaired", len(mismatched))
    return samples, len(mismatched)
