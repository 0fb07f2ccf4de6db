"""Presets (as data) and the resolved plan of a study run (RUN_DIR/study.json).

A preset fixes everything that decides what the numbers mean: the data options of every
family (applied alike to the ICL prompt, the adapters' training data and the scored test
items, so all conditions score the same items), the finetuning and augmentation settings
and the scoring limit. Flags override single settings (`--steps`, `--limit`, ...).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from icl_ft.study import StudyError

# Conditions in the order of the paper's figures. `base` scores the FT prompts (no context) on
# the base model: the contamination control, expected at chance.
CONDITIONS = ("base", "icl", "ft", "ft_local", "ft_global", "ft_oracle")
DEFAULT_CONDITIONS = ("base", "icl", "ft", "ft_local", "ft_global")
# Condition -> augmentation mode whose rows are added to the training data (None: original data only).
AUGMENT_MODE = {"ft": None, "ft_local": "local", "ft_global": "global", "ft_oracle": "oracle"}
TRAINED = tuple(AUGMENT_MODE)
SCHEMA_VERSION = 1
# Plan keys that a rerun may change without invalidating finished work: the run is extended
# (more seeds, conditions or families) or only its speed changes.
EXTENSIBLE_KEYS = frozenset({"seeds", "conditions", "families", "tasks", "threads", "package_version"})


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    description: str
    data_seed: int = 0
    # family -> generator options (lm-eval --metadata, finetune --family-options, augment --family-option)
    family_options: dict = dataclasses.field(default_factory=dict)
    # FinetuneConfig fields shared by every adapter
    finetune: dict = dataclasses.field(default_factory=dict)
    # augment mode -> AugmentConfig fields
    augment: dict = dataclasses.field(default_factory=dict)
    # lm-eval --limit per leaf task (None: every test item)
    limit: int | None = None
    batch_size: int = 1  # lm-eval batch size of the scoring cells
    threads: int = 0  # torch CPU threads (0: torch's default, one per core)


PRESETS = {
    "small": Preset(
        name="small",
        description="CPU demo: small data, short training, limited global augmentation (< 30 min on 2 busy cores)",
        family_options={
            "reversal": {"num_facts": 20, "examples_per_fact": 5},
            "syllogism": {"num_items": 24},
            # 24 categories (3 held out): 326 test rows at seed 0 instead of the small preset's 578, so that
            # scoring every item keeps `make run` under 30 minutes (estimate in the issue-13 report).
            "semantic": {"preset": "small", "num_categories": 24, "num_holdout": 3, "num_documents": 48},
            "reversal_curse": {"num_celebrities": 16, "train_phrasings": 4},
        },
        # 60 steps of 8 units: ~5 passes over the reversal set, 20 over the syllogisms, ~1.5 over
        # the semantic sentences. The learning rate is above the paper's 3e-4 because so few
        # steps barely move a LoRA adapter at 3e-4.
        finetune={
            "steps": 60,
            "batch_size": 8,
            "learning_rate": 1e-3,
            "warmup_steps": 5,
            "save_steps": 20,
            "logging_steps": 10,
            "verify_texts": 8,
            "precision": "auto",
        },  # fmt: skip
        # Local augmentation of every fact; global augmentation of 16 documents per family (each
        # generation sees the facts in context, trimmed to 1500 tokens).
        augment={
            "local": {"max_new_tokens": 48, "batch_size": 8},
            "global": {
                "max_new_tokens": 64,
                "batch_size": 4,
                "limit": 16,
                "context_token_budget": 1500,
                "context": "facts",
            },  # fmt: skip
            "oracle": {},
        },
        # Every test item: a `--limit` prefix is a fair sample (lm_eval_tasks.ordering), but the whole
        # split is the measurement. hf-prefix makes the ICL cells cheap.
        limit=None,
        # FT cells score 400-2,300 short requests; batch 1 spent 61 s on each semantic FT cell.
        batch_size=8,
        # On 2 cores shared with other jobs one thread was 2-3x faster than two (generation of
        # 20 tokens x 8 prompts, back to back: 25 s vs 60-75 s; local augmentation of 8 facts in
        # two study runs: 15 s vs 108 s, under different loads): oversubscribed threads spin.
        # Pass --threads 2 on an idle machine.
        threads=1,
    ),
    "paper": Preset(
        name="paper",
        description="GPU scale: the families' full data, paper step counts (200-1000), every test item",
        family_options={"semantic": {"preset": "paper"}},
        finetune={"batch_size": 8, "learning_rate": 3e-4, "min_steps": 200, "max_steps": 1000},
        augment={"local": {}, "global": {}, "oracle": {}},
        limit=None,
        batch_size=8,
    ),
}


@dataclasses.dataclass
class StudyPlan:
    model: str
    families: list[str]
    preset: str
    seeds: list[int]
    conditions: list[str]
    data_seed: int
    family_options: dict
    finetune: dict
    augment: dict
    limit: int | None
    batch_size: int
    threads: int
    package_version: str
    schema: int = SCHEMA_VERSION

    @property
    def tasks(self) -> list[str]:
        return [f"icl_ft_{family}" for family in self.families]

    def options(self, family: str) -> dict[str, Any]:
        return dict(self.family_options.get(family, {}))

    def metadata(self, family: str) -> dict[str, Any]:
        """lm-eval `metadata` of every scoring cell of `family`: the same items for every condition."""
        return {"seed": self.data_seed, **self.options(family)}

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "tasks": self.tasks}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StudyPlan:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def families_from_tasks(tasks: str) -> list[str]:
    """`icl_ft_reversal,icl_ft_syllogism` (or bare family names) -> families; unknown names are an error."""
    from lm_eval_tasks.api import FAMILIES

    families = []
    for name in (t.strip() for t in tasks.split(",")):
        if not name:
            continue
        family = name.removeprefix("icl_ft_")
        if family not in FAMILIES:
            valid = ",".join(f"icl_ft_{f}" for f in FAMILIES)
            raise StudyError(f"unknown task {name!r}; --tasks takes a comma-separated subset of: {valid}")
        if family not in families:
            families.append(family)
    if not families:
        raise StudyError("--tasks is empty; e.g. --tasks icl_ft_reversal,icl_ft_syllogism,icl_ft_semantic")
    return families


def check_model(model: str) -> str:
    """The model must be a local Hugging Face model directory (checked before any work)."""
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        what = "does not exist" if not path.exists() else "has no config.json, so it is not a model directory"
        raise StudyError(f"--model {model} {what}; give a Hugging Face model directory, e.g. $(icl-ft model path)")
    return str(path.resolve())


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise StudyError(f"--seeds {text!r} is not a comma-separated list of integers, e.g. --seeds 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise StudyError(f"--seeds {text!r}: give distinct integers, e.g. --seeds 0,1,2")
    return seeds


def parse_conditions(text: str | None, oracle: bool) -> list[str]:
    conditions = list(DEFAULT_CONDITIONS) if text is None else [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise StudyError(f"unknown condition(s) {unknown}; --conditions takes a subset of {','.join(CONDITIONS)}")
    if oracle and "ft_oracle" not in conditions:
        conditions.append("ft_oracle")
    if not conditions:
        raise StudyError(f"--conditions is empty; choose from {','.join(CONDITIONS)}")
    return [c for c in CONDITIONS if c in conditions]


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm-eval-icl-ft")
    except PackageNotFoundError:
        return "unknown"


def build_plan(
    model: str,
    tasks: str,
    preset: str = "small",
    seeds: str = "0",
    conditions: str | None = None,
    oracle: bool = False,
    limit: int | None = None,
    steps: int | None = None,
    threads: int = 0,
) -> StudyPlan:
    """Resolve flags over a preset; every bad input is a StudyError before any work starts."""
    if preset not in PRESETS:
        raise StudyError(f"unknown --preset {preset!r}; choose one of {sorted(PRESETS)}")
    families = families_from_tasks(tasks)
    model_path = check_model(model)
    chosen = PRESETS[preset]
    threads = threads or chosen.threads
    finetune = dict(chosen.finetune)
    if steps is not None:
        if steps < 1:
            raise StudyError(f"--steps {steps} must be >= 1")
        finetune["steps"] = steps
    if threads:
        finetune["threads"] = threads
    if limit is not None and limit < 1:
        raise StudyError(f"--limit {limit} must be >= 1 (items per test split)")
    family_options = {f: dict(chosen.family_options.get(f, {})) for f in families}
    from lm_eval_tasks.api import family_options as known_options

    for family, options in family_options.items():
        unknown = sorted(set(options) - set(known_options(family)))
        if unknown:  # a preset bug, but say so clearly
            raise StudyError(f"preset {preset!r} gives {family} unknown option(s) {unknown}")
    return StudyPlan(
        model=model_path,
        families=families,
        preset=preset,
        seeds=parse_seeds(seeds),
        conditions=parse_conditions(conditions, oracle),
        data_seed=chosen.data_seed,
        family_options=family_options,
        finetune=finetune,
        augment={mode: dict(values) for mode, values in chosen.augment.items()},
        limit=limit if limit is not None else chosen.limit,
        batch_size=chosen.batch_size,
        threads=threads,
        package_version=package_version(),
    )


def plan_differences(saved: dict[str, Any], plan: StudyPlan) -> list[str]:
    """Keys where `plan` contradicts a run's saved plan (extending a run is not a contradiction)."""
    current = plan.to_dict()
    differing = []
    for key in sorted(set(saved) | set(current)):
        if key in EXTENSIBLE_KEYS or key == "finetune":
            continue
        if key == "family_options":  # only families both plans have
            common = set(saved.get(key, {})) & set(current[key])
            if any(saved[key][f] != current[key][f] for f in common):
                differing.append(key)
        elif saved.get(key) != current.get(key):
            differing.append(key)
    # `threads` only changes speed
    strip = lambda d: {k: v for k, v in (d or {}).items() if k != "threads"}  # noqa: E731
    if strip(saved.get("finetune")) != strip(current["finetune"]):
        differing.append("finetune")
    return differing


def merge_plan(saved: dict[str, Any], plan: StudyPlan) -> StudyPlan:
    """The plan of an extended run: the union of seeds, conditions and families."""
    merged = StudyPlan.from_dict(saved)
    merged.seeds = list(dict.fromkeys([*saved["seeds"], *plan.seeds]))
    merged.conditions = [c for c in CONDITIONS if c in saved["conditions"] or c in plan.conditions]
    merged.families = list(dict.fromkeys([*saved["families"], *plan.families]))
    merged.family_options = {**plan.family_options, **saved["family_options"]}
    merged.threads = plan.threads
    merged.package_version = plan.package_version
    return merged


def load_saved_plan(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict) or "model" not in saved:
            raise ValueError
    except (OSError, ValueError):
        raise StudyError(
            f"{path} is not a study plan (unreadable or corrupted); use a new --out or delete it"
        ) from None
    return saved
