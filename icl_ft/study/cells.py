"""The steps of a study and their on-disk state (file names: icl_ft_common.artifacts).

    RUN_DIR/study.json                          the resolved plan
    RUN_DIR/augment/<family>-<mode>.jsonl       (+ .summary.json) augmented training rows
    RUN_DIR/adapters/<family>-<condition>-seed<k>/   LoRA adapters (finetune's atomic output); k: training seed
    RUN_DIR/cells/<cell_id>/cell.json           a scoring cell's state (written atomically)
    RUN_DIR/cells/<cell_id>/lm_eval/            lm-eval's own results and samples files

A study of several models has one such directory per model, RUN_DIR/models/<model id>/ (a
short stable id: `model_id`), listed in RUN_DIR/models.json; a one-model study is RUN_DIR
itself, as before several models were possible, so older run directories still resume.

A step is done iff its atomic output exists: the augment JSONL with its summary, the adapter
directory with its provenance file, a cell.json saying "done" whose lm-eval results file
parses. Anything else (absent, `running` left by a killed run, `failed`, corrupted) is redone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from icl_ft.conditions import AUGMENT_MODE
from icl_ft.study import StudyError
from icl_ft.study.plan import StudyPlan
from icl_ft_common.artifacts import (
    ADAPTERS_DIR,
    AUGMENT_DIR,
    CELL_FILE,
    CELLS_DIR,
    LM_EVAL_DIR,
    PLAN_FILE,
    PROVENANCE_FILE,
    summary_path,
)
from icl_ft_common.io import read_json, write_json_atomic

MODELS_FILE = "models.json"  # RUN_DIR/models.json: model id -> model path, in a study of several models
MODELS_DIR = "models"


def model_id(model: str) -> str:
    """A short directory name that stays the same for a model: its directory's name and a hash of its path."""
    path = Path(model).resolve()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name).strip("-.") or "model"
    return f"{name}-{hashlib.sha1(str(path).encode()).hexdigest()[:6]}"


def model_run_dirs(run_dir: Path, models: list[str]) -> list[tuple[str, Path]]:
    """(model id, that model's run directory) per model: RUN_DIR itself for one model (the layout of
    every run before several models), RUN_DIR/models/<model id>/ for several."""
    if len(models) == 1 and not (run_dir / MODELS_FILE).exists():
        return [("", run_dir)]
    if (run_dir / PLAN_FILE).exists():
        raise StudyError(
            f"{run_dir} holds a one-model study; a study of several models needs a new --output "
            "(or run each model with its own --output)"
        )
    return [(model_id(m), run_dir / MODELS_DIR / model_id(m)) for m in models]


def record_models(run_dir: Path, models: list[str]) -> None:
    """Add the models to RUN_DIR/models.json (the runs of a study of several models)."""
    path = run_dir / MODELS_FILE
    recorded = read_json(path) if path.exists() else {}
    write_json_atomic(path, {**recorded, **{model_id(m): str(Path(m).resolve()) for m in models}})


def study_models(run_dir: Path) -> list[tuple[str, str | None, Path]]:
    """(model id, model path, run directory) of every model of a study RUN_DIR; one entry with id ""
    for a one-model study."""
    path = run_dir / MODELS_FILE
    if not path.exists():
        return [("", None, run_dir)]
    try:
        recorded = read_json(path)
        if not isinstance(recorded, dict):
            raise ValueError
    except (OSError, ValueError):
        raise StudyError(f"{path} is unreadable; rerun the study to rewrite it") from None
    return [(mid, model, run_dir / MODELS_DIR / mid) for mid, model in recorded.items()]


@dataclasses.dataclass(frozen=True)
class Step:
    kind: str  # "augment" | "adapter" | "cell" | "score" (one pass over a family's FT-prompt cells)
    family: str
    condition: str | None = None  # adapter and cell steps
    mode: str | None = None  # augment steps
    train_seed: int | None = None  # adapter steps and trained cells

    @property
    def id(self) -> str:
        """`<family>-<mode>` or `<family>-<condition>[-seed<training seed>]`: a directory name of RUN_DIR."""
        if self.kind == "augment":
            return f"{self.family}-{self.mode}"
        suffix = f"-seed{self.train_seed}" if self.train_seed is not None else ""
        return f"{self.family}-{self.condition}{suffix}"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.id}"


def steps_of(plan: StudyPlan) -> list[Step]:
    """Every step of the plan, dependencies first."""
    steps: list[Step] = []
    trained = [c for c in plan.conditions if c in AUGMENT_MODE]
    for family in plan.families:
        for condition in trained:
            mode = AUGMENT_MODE[condition]
            if mode:
                steps.append(Step("augment", family, mode=mode))
    for family in plan.families:
        for seed in plan.train_seeds:
            for condition in trained:
                steps.append(Step("adapter", family, condition=condition, train_seed=seed))
    for family in plan.families:
        for condition in plan.conditions:
            if condition in AUGMENT_MODE:
                steps.extend(Step("cell", family, condition=condition, train_seed=seed) for seed in plan.train_seeds)
            else:
                steps.append(Step("cell", family, condition=condition))
    return steps


def score_pass(family: str) -> Step:
    """The step that scores every FT-prompt cell of `family` in one pass (base model loaded once)."""
    return Step("score", family, condition="ft")


def pass_cells(plan: StudyPlan, family: str) -> list[Step]:
    """The cells of a family's scoring pass: `base` and every trained condition x training seed
    (all score the bare-question tasks on the same items); the ICL cell is a step of its own."""
    return [s for s in steps_of(plan) if s.kind == "cell" and s.family == family and s.condition != "icl"]


def dependencies(step: Step) -> list[Step]:
    if step.kind == "adapter":
        mode = AUGMENT_MODE[step.condition]
        return [Step("augment", step.family, mode=mode)] if mode else []
    if step.kind == "cell" and step.condition in AUGMENT_MODE:
        return [Step("adapter", step.family, condition=step.condition, train_seed=step.train_seed)]
    return []


class RunDir:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def plan_file(self) -> Path:
        return self.root / PLAN_FILE

    def augment_output(self, family: str, mode: str) -> Path:
        return self.root / AUGMENT_DIR / f"{family}-{mode}.jsonl"

    def adapter_dir(self, step: Step) -> Path:
        return self.root / ADAPTERS_DIR / Step("adapter", step.family, step.condition, train_seed=step.train_seed).id

    def cell_dir(self, step: Step) -> Path:
        return self.root / CELLS_DIR / step.id

    def output_of(self, step: Step) -> Path:
        if step.kind == "augment":
            return self.augment_output(step.family, step.mode)
        if step.kind == "adapter":
            return self.adapter_dir(step)
        return self.cell_dir(step)

    # --- done-ness -------------------------------------------------------------------------

    def is_done(self, step: Step) -> bool:
        if step.kind == "augment":
            output = self.augment_output(step.family, step.mode)
            return output.is_file() and summary_path(output).is_file()
        if step.kind == "adapter":
            return _parses(self.adapter_dir(step) / PROVENANCE_FILE)
        state = self.read_cell(step)
        return bool(state) and state.get("status") == "done" and results_file(self.cell_dir(step)) is not None

    def read_cell(self, step: Step) -> dict[str, Any] | None:
        """The cell's state, or None if absent or corrupted (then the cell is redone)."""
        try:
            state = json.loads((self.cell_dir(step) / CELL_FILE).read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def write_cell(self, step: Step, **state: Any) -> None:
        write_json_atomic(self.cell_dir(step) / CELL_FILE, state)


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return True


def results_file(cell_dir: Path) -> Path | None:
    """The newest lm-eval results file of a cell that parses and has results, else None."""
    for path in sorted((cell_dir / LM_EVAL_DIR).glob("*/results_*.json"), reverse=True):
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(results, dict) and results.get("results"):
            return path
    return None
