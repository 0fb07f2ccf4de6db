"""Read lm-eval output (a study RUN_DIR of cells, or results dirs made by hand) into a tidy
list of scored samples, one row per (run, task, doc).

    >>> loaded = load_runs([Path("runs/study-1")])
    >>> loaded.samples[0].condition, loaded.samples[0].split, loaded.samples[0].correct

Only lm-eval's own files are read: `results_<timestamp>.json` and, written next to it by
`--log_samples`, `samples_<task>_<timestamp>.jsonl`. Scores come from the samples (the
per-doc `acc`), so that conditions can be paired item by item.

Two seeds identify a run, each in its own field: `data_seed` (the generated data: lm-eval's
task metadata `seed`) and `train_seed` (the adapter's training: a study cell's record, or the
`icl_ft_provenance.json` of a hand-made run's `peft=` adapter; None without an adapter).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from icl_ft_common.artifacts import CELL_FILE, CELLS_DIR, LM_EVAL_DIR, PROVENANCE_FILE
from lm_eval_tasks.families import parse_task

__all__ = [
    "CompareError",
    "Loaded",
    "MissingCell",
    "RunInfo",
    "Sample",
    "is_models_dir",
    "is_study_dir",
    "load_runs",
    "parse_task",
]

logger = logging.getLogger(__name__)


class CompareError(ValueError):
    """Bad input for `icl-ft compare`; the message is one line naming the file and the fix."""


@dataclasses.dataclass(frozen=True)
class Sample:
    condition: str  # base / icl / ft / ft_local ... or ft:<adapter dir name> for hand-made runs
    data_seed: int | None
    train_seed: int | None  # None: no adapter, or one whose training seed is unknown
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
    data_seed: int | None
    train_seed: int | None
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
    train_seed: int | None
    status: str
    error: str | None


@dataclasses.dataclass
class Loaded:
    samples: list[Sample]
    runs: list[RunInfo]
    missing: list[MissingCell]
    join_mismatches: int = 0


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


def _adapter_train_seed(adapter: str | None) -> int | None:
    """The training seed an adapter directory's provenance records (None if it records none)."""
    if not adapter:
        return None
    try:
        record = json.loads((Path(adapter) / PROVENANCE_FILE).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    seed = record.get("train_seed", record.get("seed")) if isinstance(record, dict) else None  # "seed": older records
    return seed if isinstance(seed, int) else None


def _read_run(
    results_file: Path, condition: str | None = None, train_seed: Any = ..., cell: str | None = None
) -> tuple[RunInfo, list[Sample]]:
    """One results file and its samples files. `condition`/`train_seed` come from a study cell;
    for hand-made runs they are inferred from the task names, model_args and the adapter."""
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

    if train_seed is ...:
        train_seed = _adapter_train_seed(adapter)
    samples: list[Sample] = []
    tasks, conditions, data_seeds = {}, [], set()
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
        data_seed = (task_config.get("metadata") or {}).get("seed")  # lm-eval's metadata spells the data seed `seed`
        data_seed = data_seed if isinstance(data_seed, int) else None
        data_seeds.add(data_seed)
        conditions.append(task_condition)
        tasks[task] = (results.get("versions") or {}).get(task)
        samples_file = results_file.parent / f"samples_{task}_{timestamp}.jsonl"
        if not samples_file.exists():
            raise CompareError(
                f"{results_file}: no samples for task {task} (expected {samples_file.name}); "
                "rerun lm_eval with --log_samples"
            )
        samples += _read_samples(samples_file, task_condition, data_seed, train_seed, family, split, str(results_file))
    if not tasks:
        raise CompareError(f"{results_file}: no icl_ft_* task in it; run lm_eval with --tasks icl_ft_<family>...")
    info = RunInfo(
        results_file=str(results_file),
        conditions=tuple(dict.fromkeys(conditions)),
        data_seed=next(iter(data_seeds)) if len(data_seeds) == 1 else None,
        train_seed=train_seed,
        model=str(model_args.get("pretrained", results.get("model_name", "?"))),
        adapter=adapter,
        tasks=tasks,
        lm_eval_version=str(results.get("lm_eval_version", "?")),
        transformers_version=str(results.get("transformers_version", "?")),
        limit=config.get("limit"),
        cell=cell,
    )
    return info, samples


def _read_samples(path: Path, condition, data_seed, train_seed, family, split, run) -> list[Sample]:
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
                    data_seed=data_seed,
                    train_seed=train_seed,
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
    return (path / CELLS_DIR).is_dir()


def is_models_dir(path: Path) -> bool:
    """A study RUN_DIR of several models (RUN_DIR/models.json, a run directory per model)."""
    from icl_ft.study.cells import MODELS_FILE

    return (path / MODELS_FILE).is_file()


def _load_study(run_dir: Path) -> tuple[list[RunInfo], list[Sample], list[MissingCell]]:
    runs, samples, missing = [], [], []
    for cell_json in sorted((run_dir / CELLS_DIR).glob(f"*/{CELL_FILE}")):
        cell_dir = cell_json.parent
        cell = _read_json(cell_json, "rerun that cell of the study (or delete its directory)")
        if not isinstance(cell, dict) or "condition" not in cell or "status" not in cell:
            raise CompareError(
                f"{cell_json}: not a study cell record (needs 'condition' and 'status'); rerun that cell"
            )
        train_seed = cell.get("train_seed", cell.get("seed"))  # older cells say "seed"
        if cell["status"] != "done":
            missing.append(
                MissingCell(
                    cell_dir.name,
                    cell["condition"],
                    cell.get("family", "?"),
                    train_seed,
                    cell["status"],
                    cell.get("error"),
                )
            )
            continue
        model_dirs = sorted({p.parent for p in (cell_dir / LM_EVAL_DIR).rglob("results_*.json")})
        if not model_dirs:
            raise CompareError(
                f"{cell_dir}: marked done but no results_*.json under {cell_dir / LM_EVAL_DIR}; rerun that cell"
            )
        for model_dir in model_dirs:
            info, rows = _read_run(
                _newest_results(model_dir), condition=cell["condition"], train_seed=train_seed, cell=cell_dir.name
            )
            runs.append(info)
            samples += rows
    if not runs and not missing:
        raise CompareError(f"{run_dir}: no {CELLS_DIR}/*/{CELL_FILE} in it; pass the RUN_DIR that `icl-ft study` wrote")
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
        unit = (s.condition, s.data_seed, s.train_seed, s.family, s.split)
        if seen.setdefault(unit, s.run) != s.run:
            raise CompareError(
                f"condition {s.condition} (data seed {s.data_seed}, training seed {s.train_seed}) scores "
                f"{s.family}/{s.split} in two runs: {seen[unit]} and {s.run}; pass only one of them"
            )


def _check_doc_id_joins(samples: list[Sample]) -> tuple[list[Sample], int]:
    """Fallback keys (doc id + the doc's query/choices) must agree across conditions for
    the same doc id; rows whose doc text differs are counted and left unpaired."""
    fallback = [s for s in samples if s.key.startswith("doc_id:")]
    if not fallback:
        return samples, 0
    texts: dict[tuple, set[str]] = {}
    for s in fallback:
        texts.setdefault((s.family, s.split, s.data_seed, s.doc_id), set()).add(s.key)
    mismatched = {k for k, v in texts.items() if len(v) > 1}
    if mismatched:
        logger.warning("%d docs share a doc id but differ in query/choices across runs; left unpaired", len(mismatched))
    return samples, len(mismatched)
