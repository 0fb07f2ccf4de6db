"""Every family's declaration (lm_eval_tasks/<family>/family.py) agrees with its data and its task YAMLs,
and task names are built and parsed in one place. A new family gets these checks by adding its folder."""

from __future__ import annotations

import pytest
import yaml

from lm_eval_tasks import TASKS_DIR
from lm_eval_tasks.api import family_options, generate_family
from lm_eval_tasks.families import (
    FAMILIES,
    UnknownFamilyError,
    condition_group,
    family_group,
    family_of_group,
    family_spec,
    parse_task,
    task_name,
)


class _Loader(yaml.SafeLoader):
    """Reads lm-eval task YAMLs, whose `!function` tags are plain strings here."""


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def _yaml_tasks() -> dict[str, dict]:
    configs = [yaml.load(path.read_text(), Loader=_Loader) for path in TASKS_DIR.glob("*/*.yaml")]
    return {config["task"]: config for config in configs if isinstance(config.get("task"), str)}


@pytest.mark.parametrize("family", FAMILIES)
def test_the_spec_agrees_with_the_generated_data_and_the_yamls(family):
    spec = family_spec(family)
    small = spec.study.options.get("small", {})
    assert set(small) <= set(family_options(family))  # the study's options are generator options
    data = generate_family(family, 0, **small)
    assert tuple(data.tests) == spec.splits
    for split, rows in data.tests.items():
        chance = sum(1 / len(row["choices"]) for row in rows) / len(rows)
        assert chance == pytest.approx(spec.chance), split
    assert bool(data.oracle) == spec.oracle
    tasks = _yaml_tasks()
    for split in spec.splits:
        for condition in ("icl", "ft"):
            config = tasks[task_name(family, split, condition)]
            assert config["test_split"] == split
    umbrella = yaml.load((TASKS_DIR / "_icl_ft.yaml").read_text(), Loader=_Loader)
    assert family_group(family) in umbrella["task"]  # the one line outside the folder a family needs


def test_names_are_built_and_parsed_by_one_module():
    assert task_name("reversal_curse", "reverse", "ft") == "icl_ft_reversal_curse_reverse_ft"
    assert parse_task("icl_ft_reversal_curse_reverse_ft") == ("reversal_curse", "reverse", "ft")
    assert parse_task("icl_ft_semantic_deduction_long_icl").split == "deduction_long"
    assert parse_task(condition_group("reversal", "ft")) is None and parse_task("arc_easy") is None
    assert family_of_group("icl_ft_reversal_curse") == "reversal_curse" and family_of_group("icl_ft_nope") is None
    with pytest.raises(ValueError, match="prompt condition 'base'"):
        task_name("reversal", "forward", "base")
    with pytest.raises(UnknownFamilyError, match=r"unknown task family 'nope'; choose one of \[.*'reversal'"):
        family_spec("nope")
