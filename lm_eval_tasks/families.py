"""The family registry and the one owner of task names.

    >>> from lm_eval_tasks.families import FAMILIES, family_spec, task_name, parse_task
    >>> FAMILIES                                     # ('reversal', 'reversal_curse', 'semantic', 'syllogism')
    >>> family_spec("reversal").splits               # ('forward', 'reverse')
    >>> task_name("reversal", "forward", "icl")      # 'icl_ft_reversal_forward_icl'
    >>> parse_task("icl_ft_reversal_curse_reverse_ft")   # TaskName('reversal_curse', 'reverse', 'ft')

Names, as the task YAMLs define them:

    icl_ft                                  group: every family
    icl_ft_<family>                         group: one family, its _icl and _ft subgroups
    icl_ft_<family>_<condition>             group: one prompt condition, accuracy over the splits
    icl_ft_<family>_<split>_<condition>     task: one split in one condition (icl or ft)

A family is a folder with a `family.py` defining `SPEC` (`lm_eval_tasks.spec.FamilySpec`); it is
found by that file, imported on first use.
"""

from __future__ import annotations

import functools
import importlib
from typing import NamedTuple

from lm_eval_tasks import TASKS_DIR
from lm_eval_tasks.spec import FamilySpec

FAMILIES = tuple(sorted(path.parent.name for path in TASKS_DIR.glob("*/family.py")))

TASK_PREFIX = "icl_ft_"
ALL_FAMILIES_GROUP = "icl_ft"
# The two prompts of every split: `icl` shows the training facts before the question, `ft`
# asks the bare question (for a finetuned adapter; on the base model, the no-knowledge control).
PROMPT_CONDITIONS = ("icl", "ft")


class UnknownFamilyError(ValueError):
    """A name that is not a task family; the message lists the families."""


def check_family(family: str) -> str:
    if family not in FAMILIES:
        raise UnknownFamilyError(f"unknown task family {family!r}; choose one of {list(FAMILIES)}")
    return family


@functools.cache
def family_spec(family: str) -> FamilySpec:
    """The spec declared in `lm_eval_tasks/<family>/family.py`."""
    spec = importlib.import_module(f"lm_eval_tasks.{check_family(family)}.family").SPEC
    if not isinstance(spec, FamilySpec) or spec.name != family:
        raise TypeError(f"lm_eval_tasks/{family}/family.py must define SPEC = FamilySpec(name={family!r}, ...)")
    return spec


# --- task names ------------------------------------------------------------------------------


class TaskName(NamedTuple):
    family: str
    split: str
    condition: str  # one of PROMPT_CONDITIONS


def family_group(family: str) -> str:
    return f"{TASK_PREFIX}{family}"


def condition_group(family: str, condition: str) -> str:
    """The group that scores every split of `family` in one prompt condition."""
    _check_condition(condition)
    return f"{TASK_PREFIX}{family}_{condition}"


def task_name(family: str, split: str, condition: str) -> str:
    _check_condition(condition)
    return f"{TASK_PREFIX}{family}_{split}_{condition}"


def _check_condition(condition: str) -> None:
    if condition not in PROMPT_CONDITIONS:
        raise ValueError(f"prompt condition {condition!r} is not one of {PROMPT_CONDITIONS}")


def parse_task(task: str) -> TaskName | None:
    """`icl_ft_<family>_<split>_<condition>` -> TaskName; None for groups and foreign tasks.

    Family names contain underscores (reversal_curse), so the family is the longest family
    name that prefixes the rest.
    """
    if not task.startswith(TASK_PREFIX):
        return None
    rest = task.removeprefix(TASK_PREFIX)
    condition = next((c for c in PROMPT_CONDITIONS if rest.endswith("_" + c)), None)
    if condition is None:
        return None
    rest = rest.removesuffix("_" + condition)
    for family in sorted(FAMILIES, key=len, reverse=True):
        if rest.startswith(family + "_"):
            split = rest.removeprefix(family + "_")
            return TaskName(family, split, condition) if split else None
    return None


def family_of_group(name: str) -> str | None:
    """`icl_ft_<family>` (or the bare family name) -> the family; None if it names none."""
    family = name.removeprefix(TASK_PREFIX)
    return family if family in FAMILIES else None
