"""`StudyConfig`: the settings of `icl-ft study`, parsed like finetune's and augment's (icl_ft_common.config).

`build_plan(StudyConfig(...))` (study/plan.py) resolves them over a preset into the plan.
"""

from __future__ import annotations

import dataclasses

from icl_ft.conditions import CONDITIONS, DEFAULT_CONDITIONS
from icl_ft_common.config import check_fields, setting


@dataclasses.dataclass
class StudyConfig:
    model: list[str] = setting(
        [],
        "base model(s): Hugging Face model directories, e.g. $(icl-ft model path) (required); several models "
        "(--model A --model B, or A,B) get their own adapters and cells on the same data",
        repeatable=True,
    )
    tasks: str = setting("", "comma-separated task groups, e.g. icl_ft_reversal,icl_ft_semantic (required)")
    output: str = setting("", "run directory; rerun the same command to resume (required)", old_names=("out",))
    preset: str = setting("small", "small (CPU demonstration) or paper (GPU scale); see icl_ft/study/plan.py")
    train_seeds: list[int] = setting(
        [0], "training seeds: one adapter per seed and trained condition, e.g. 1,2,3", old_names=("seeds",)
    )
    data_seed: int | None = setting(None, "seed of every family's generated data [default: the preset's, 0]")
    family_options: dict = setting(
        {},
        "generator option NAME=VALUE for every family that has it, or FAMILY.NAME=VALUE for one "
        "(e.g. reversal.num_facts=50); over the preset's",
        pairs=True,
        flag="--family-option",
    )
    conditions: list[str] = setting(list(DEFAULT_CONDITIONS), f"conditions to run, a subset of {','.join(CONDITIONS)}")
    oracle: bool = setting(False, "add ft_oracle (FT + the generator's oracle statements)")
    limit: int | None = setting(None, "test items per split [default: the preset's]")
    steps: int | None = setting(None, "finetuning steps per adapter [default: the preset's]")
    threads: int = setting(0, "torch CPU threads (0 = one per core; 1 is faster on a busy shared machine)")
    executor: str = setting(
        "local",
        "local (steps in turn, in this process) or ray (Ray tasks; pip install 'lm-eval-icl-ft[ray]')",
        choices=("local", "ray"),
    )
    ray_address: str | None = setting(None, "--executor ray: a cluster (`ray start --head`) [default: a local one]")
    max_retries: int = setting(2, "--executor ray: attempts after the first of a step that fails or whose worker dies")
    dry_run: bool = setting(False, "print the plan (steps, tokens, estimated time) and exit without running it")

    def __post_init__(self) -> None:
        if isinstance(self.model, str):  # StudyConfig(model="dir") or a comma list
            self.model = [m.strip() for m in self.model.split(",") if m.strip()]
        check_fields(self)
