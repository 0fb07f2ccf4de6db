"""Presets and the resolved plan of a study run (RUN_DIR/study.json).

A preset fixes everything that decides what the numbers mean: the finetuning and augmentation
settings (typed `FinetuneConfig` / `AugmentConfig` settings, checked when the preset is
defined), the scoring limit and the data seed. Each family declares its own data options per
preset (`FamilySpec.study.options`); they apply alike to the ICL prompt, the adapters' training
data and the scored test items, so all conditions score the same items. Flags override single
settings (`--steps`, `--limit`, `--family-option`, ...).

`build_plan` checks everything before any work starts: it builds the finetune and augment
config of every step the plan will run, so an unknown or invalid setting, preset or family
option is a StudyError at plan time, not when a step runs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from augment.config import AugmentConfig
from finetune.config import FinetuneConfig
from icl_ft.conditions import AUGMENT_MODE, CONDITIONS
from icl_ft.study import StudyError
from icl_ft.study.config import StudyConfig
from icl_ft_common.config import ConfigError, check_values

# study.json's layout. 1: `seeds` (the training seeds); 2: `train_seeds`. Older plans are read
# through `StudyPlan.from_dict`, which renames their keys, so old run directories still resume.
SCHEMA_VERSION = 2
# Plan keys that a rerun may change without invalidating finished work: the run is extended
# (more seeds, conditions or families) or only its speed changes.
EXTENSIBLE_KEYS = frozenset({"train_seeds", "conditions", "families", "tasks", "threads", "package_version"})
# Settings the study itself gives every step: a preset must not set them.
STEP_FINETUNE_FIELDS = frozenset(
    {"family", "output", "model", "data_seed", "family_options", "extra_data", "train_seed", "resume", "overwrite"}
)
STEP_AUGMENT_FIELDS = frozenset({"mode", "family", "data_seed", "family_options", "output", "model", "overwrite"})


@dataclasses.dataclass(frozen=True)
class Preset:
    """`finetune`: FinetuneConfig settings shared by every adapter; `augment`: augment mode ->
    AugmentConfig settings. Both are typed and checked (unknown names rejected) on creation."""

    name: str
    description: str
    finetune: dict[str, Any] = dataclasses.field(default_factory=dict)
    augment: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    limit: int | None = None  # lm-eval --limit per leaf task (None: every test item)
    batch_size: int = 1  # lm-eval batch size of the scoring cells
    threads: int = 0  # torch CPU threads (0: torch's default, one per core)
    data_seed: int = 0

    def __post_init__(self) -> None:
        finetune = _preset_settings(
            FinetuneConfig, self.finetune, STEP_FINETUNE_FIELDS, f"preset {self.name!r} finetune"
        )
        augment = {
            mode: _preset_settings(AugmentConfig, values, STEP_AUGMENT_FIELDS, f"preset {self.name!r} augment {mode}")
            for mode, values in self.augment.items()
        }
        object.__setattr__(self, "finetune", finetune)
        object.__setattr__(self, "augment", augment)


def _preset_settings(cls: type, values: dict[str, Any], reserved: frozenset[str], where: str) -> dict[str, Any]:
    taken = sorted(set(values) & reserved)
    if taken:
        raise ConfigError(f"{where} sets {taken}, which the study sets for every step")
    return check_values(cls, values, where=where)


PRESETS = {
    "small": Preset(
        name="small",
        description="CPU demo: small data, short training, limited global augmentation (< 30 min on 2 idle cores)",
        # 40 steps of 8 units: ~3 passes over the reversal, syllogism, reversal-curse and process
        # sentences (96-100 each), ~1.5 over the semantic ones (206). Fixed, not per epoch, so that
        # FT and FT + augmentation take the same number of steps. The learning rate is far above
        # the paper's 3e-4 because so few steps barely move a LoRA adapter there: on reversal
        # (forward/reverse, 20 items each) 40 steps at 1e-3 scored 0.65/0.45, at 2e-3 0.90/0.50
        # (60 steps at 1e-3: 0.95/0.40, but 5 more minutes of `make run`).
        finetune={
            "steps": 40,
            "batch_size": 8,
            "learning_rate": 2e-3,
            "warmup_steps": 5,
            "save_steps": 20,
            "logging_steps": 10,
            "verify_texts": 8,
            "precision": "auto",
        },
        # Local augmentation of every fact; global augmentation of 8 documents per family (each
        # generation sees the facts in context, trimmed to 1500 tokens).
        augment={
            # Batches of 16 and 8 prompts: generation on CPU gains from every prompt added.
            "local": {"max_new_tokens": 48, "batch_size": 16},
            "global": {
                "max_new_tokens": 64,
                "batch_size": 8,
                "limit": 8,
                "context_token_budget": 1500,
                "context": "facts",
            },
            "oracle": {},
        },
        # Every test item: a `--limit` prefix is a fair sample (lm_eval_tasks.ordering), but the whole
        # split is the measurement. hf-prefix makes the ICL cells cheap.
        limit=None,
        # FT cells score 80-1,300 short requests each: a semantic FT cell took 63 s at batch 8 and
        # 46 s at batch 32, with the same accuracy (2 idle cores, lm_eval on icl_ft_semantic_ft).
        batch_size=32,
        # One torch thread per core: on 2 idle cores two threads trained a process adapter 1.5x
        # faster than one (169 vs 112 tokens/s). On cores shared with other jobs one thread was
        # 2-3x faster than two (oversubscribed threads spin): pass --threads 1 there.
        threads=0,
    ),
    "paper": Preset(
        name="paper",
        description="GPU scale: the families' full data, paper step counts (200-1000), every test item",
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
    train_seeds: list[int]
    conditions: list[str]
    data_seed: int
    family_options: dict  # family -> typed generator options
    finetune: dict  # FinetuneConfig settings of every adapter
    augment: dict  # augment mode -> AugmentConfig settings
    limit: int | None
    batch_size: int
    threads: int
    package_version: str
    schema: int = SCHEMA_VERSION

    @property
    def tasks(self) -> list[str]:
        from lm_eval_tasks.families import family_group

        return [family_group(family) for family in self.families]

    def options(self, family: str) -> dict[str, Any]:
        return dict(self.family_options.get(family, {}))

    def metadata(self, family: str) -> dict[str, Any]:
        """lm-eval `metadata` of every scoring cell of `family`: the same items for every condition.

        lm-eval's metadata spells the data seed `seed` (the task YAMLs' interface)."""
        return {"seed": self.data_seed, **self.options(family)}

    def finetune_config(self, family: str, output: Path, train_seed: int, extra_data: list[str]) -> FinetuneConfig:
        """The config of one adapter (finetune publishes atomically and resumes from its checkpoints)."""
        return FinetuneConfig(
            family=family,
            output=str(output),
            model=self.model,
            data_seed=self.data_seed,
            family_options=self.options(family),
            extra_data=list(extra_data),
            train_seed=train_seed,
            resume=True,
            **self.finetune,
        )

    def augment_config(self, family: str, mode: str, output: Path) -> AugmentConfig:
        """The config of one augmentation (greedy decoding by default: shared by every training seed)."""
        return AugmentConfig(
            mode=mode,
            family=family,
            data_seed=self.data_seed,
            family_options=self.options(family),
            output=str(output),
            model=self.model,
            **self.augment.get(mode, {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "tasks": self.tasks}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StudyPlan:
        """A plan from study.json, of this schema or an older one."""
        values = migrate_plan(values)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def migrate_plan(saved: dict[str, Any]) -> dict[str, Any]:
    """study.json's values in today's schema (schema 1 named the training seeds `seeds`)."""
    values = dict(saved)
    if values.get("schema", 1) < 2 and "seeds" in values:
        values["train_seeds"] = values.pop("seeds")
    values["schema"] = SCHEMA_VERSION
    return values


def families_from_tasks(tasks: str) -> list[str]:
    """`icl_ft_reversal,icl_ft_syllogism` (or bare family names) -> families; unknown names are an error."""
    from lm_eval_tasks.families import FAMILIES, family_group, family_of_group

    families = []
    for name in (t.strip() for t in tasks.split(",")):
        if not name:
            continue
        family = family_of_group(name)
        if family is None:
            valid = ",".join(family_group(f) for f in FAMILIES)
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


def check_train_seeds(seeds: list[int]) -> list[int]:
    if not seeds or len(set(seeds)) != len(seeds):
        raise StudyError(
            f"--train-seeds {','.join(map(str, seeds))!r}: give distinct integers, e.g. --train-seeds 0,1,2"
        )
    return list(seeds)


def check_conditions(conditions: list[str], oracle: bool) -> list[str]:
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise StudyError(f"unknown condition(s) {unknown}; --conditions takes a subset of {','.join(CONDITIONS)}")
    conditions = [*conditions, *(["ft_oracle"] if oracle else [])]
    if not conditions:
        raise StudyError(f"--conditions is empty; choose from {','.join(CONDITIONS)}")
    return [c for c in CONDITIONS if c in conditions]


def resolve_family_options(families: list[str], preset: str, given: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each family's generator options: its own defaults for the preset, then `--family-option`s.

    A given option is `NAME` (every family of the plan that has that option), `FAMILY.NAME`, or
    (from YAML) `FAMILY: {NAME: VALUE}`. Values are typed; any name that fits no family is an error.
    """
    from lm_eval_tasks.api import family_options, typed_family_options
    from lm_eval_tasks.families import family_spec

    resolved = {family: dict(family_spec(family).study.options.get(preset, {})) for family in families}
    for key, value in given.items():
        scoped = {key: value} if not isinstance(value, dict) else {f"{key}.{name}": v for name, v in value.items()}
        for name, option_value in scoped.items():
            family, _, option = name.rpartition(".")
            if family:
                if family not in families:
                    raise StudyError(f"--family-option {name}: {family!r} is not a family of this study ({families})")
                targets = [family]
            else:
                targets = [f for f in families if option in family_options(f)]
                if not targets:
                    valid = {f: sorted(family_options(f)) for f in families}
                    raise StudyError(f"--family-option {option}: no family of this study has it; valid: {valid}")
            for target in targets:
                resolved[target][option] = option_value
    try:
        return {family: typed_family_options(family, options) for family, options in resolved.items()}
    except ValueError as err:
        raise StudyError(f"--family-option: {err}") from None


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm-eval-icl-ft")
    except PackageNotFoundError:
        return "unknown"


def build_plan(cfg: StudyConfig) -> StudyPlan:
    """The plan of a one-model study (`build_plans` for several models)."""
    if len(cfg.model) > 1:
        raise StudyError(f"build_plan takes one --model, not {len(cfg.model)}; use build_plans")
    return build_plans(cfg)[0]


def build_plans(cfg: StudyConfig) -> list[StudyPlan]:
    """One plan per --model, alike but for the model: the same data, items and settings for all."""
    if not cfg.model:
        raise StudyError("--model is required; e.g. --model $(icl-ft model path)")
    paths = [check_model(model) for model in cfg.model]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise StudyError(f"--model {repeated[0]} is given twice; give each model once")
    plan = _build_one_plan(cfg, paths[0])
    return [plan] + [dataclasses.replace(plan, model=path) for path in paths[1:]]


def _build_one_plan(cfg: StudyConfig, model_path: str) -> StudyPlan:
    """Resolve the settings over a preset; every bad input is a StudyError before any work starts."""
    if cfg.preset not in PRESETS:
        raise StudyError(f"unknown --preset {cfg.preset!r}; choose one of {sorted(PRESETS)}")
    families = families_from_tasks(cfg.tasks)
    chosen = PRESETS[cfg.preset]
    threads = cfg.threads or chosen.threads
    finetune = dict(chosen.finetune)
    if cfg.steps is not None:
        if cfg.steps < 1:
            raise StudyError(f"--steps {cfg.steps} must be >= 1")
        finetune["steps"] = cfg.steps
    if threads:
        finetune["threads"] = threads
    if cfg.limit is not None and cfg.limit < 1:
        raise StudyError(f"--limit {cfg.limit} must be >= 1 (items per test split)")
    plan = StudyPlan(
        model=model_path,
        families=families,
        preset=cfg.preset,
        train_seeds=check_train_seeds(cfg.train_seeds),
        conditions=check_conditions(cfg.conditions, cfg.oracle),
        data_seed=chosen.data_seed if cfg.data_seed is None else cfg.data_seed,
        family_options=resolve_family_options(families, cfg.preset, cfg.family_options),
        finetune=finetune,
        augment={mode: dict(values) for mode, values in chosen.augment.items()},
        limit=cfg.limit if cfg.limit is not None else chosen.limit,
        batch_size=chosen.batch_size,
        threads=threads,
        package_version=package_version(),
    )
    check_steps(plan)
    return plan


def check_steps(plan: StudyPlan) -> None:
    """Generate every family's data and build the config of every augmentation and adapter the
    plan runs: an option the generator or a setting a step would reject is reported now, naming
    the family (and the step). Generation is memoized, so the steps reuse the data."""
    from lm_eval_tasks.api import generate_family
    from lm_eval_tasks.families import family_spec

    placeholder = Path("plan-check")
    for family in plan.families:
        try:
            generate_family(family, plan.data_seed, **plan.options(family))
        except ValueError as err:
            raise StudyError(
                f"{family} data (--data-seed {plan.data_seed}, options {plan.options(family)}): {err}"
            ) from None
        for condition in plan.conditions:
            if condition not in AUGMENT_MODE:
                continue
            mode = AUGMENT_MODE[condition]
            try:
                if mode == "oracle" and not family_spec(family).oracle:
                    raise ConfigError(f"family {family!r} has no oracle statements; drop ft_oracle for it")
                if mode:
                    plan.augment_config(family, mode, placeholder)
                plan.finetune_config(family, placeholder, plan.train_seeds[0], [])
            except ConfigError as err:
                raise StudyError(f"{family} {condition}: {err}") from None


def plan_differences(saved: dict[str, Any], plan: StudyPlan) -> list[str]:
    """Keys where `plan` contradicts a run's saved plan (extending a run is not a contradiction)."""
    saved, current = migrate_plan(saved), plan.to_dict()
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
    """The plan of an extended run: the union of training seeds, conditions and families."""
    merged = StudyPlan.from_dict(saved)
    merged.train_seeds = list(dict.fromkeys([*merged.train_seeds, *plan.train_seeds]))
    merged.conditions = [c for c in CONDITIONS if c in merged.conditions or c in plan.conditions]
    merged.families = list(dict.fromkeys([*merged.families, *plan.families]))
    merged.family_options = {**plan.family_options, **merged.family_options}
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
            f"{path} is not a study plan (unreadable or corrupted); use a new --output or delete it"
        ) from None
    return saved
