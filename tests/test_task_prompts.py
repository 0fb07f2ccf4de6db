"""Golden prompts and prompt contracts for every task the package registers.

Each leaf task's first doc is rendered exactly as lm-eval builds it and compared with a
checked-in file tests/golden/<task>.txt. A change of data or prompt must come with a
bump of the family's version (YAML metadata.version and the generator's VERSION); then
regenerate the files with

    ICL_FT_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_task_prompts.py
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest
import yaml

from lm_eval_tasks import TASKS_DIR
from lm_eval_tasks.api import FAMILIES

pytestmark = pytest.mark.internals  # relies on lm-eval's internals: `make test-latest` runs it

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("ICL_FT_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=False, include_path=str(TASKS_DIR))


def leaf_task_names() -> list[str]:
    """Every leaf task of the package: YAMLs not starting with "_" (bases and groups do)."""
    return [yaml.safe_load(path.read_text())["task"] for path in sorted(TASKS_DIR.glob("*/[!_]*.yaml"))]


def generative(task) -> bool:
    return task.config.output_type == "generate_until"


def render(task) -> dict:
    doc = task.test_docs()[0]
    return {
        "version": task.config.metadata["version"],
        "target": task.doc_to_target(doc),
        "choices": None if generative(task) else task.doc_to_choice(doc),
        "prompt": task.fewshot_context(doc, num_fewshot=0),
    }


def golden_text(rendered: dict) -> str:
    header = {key: rendered[key] for key in ("version", "target", "choices")}
    return json.dumps(header, ensure_ascii=False) + "\n--- prompt of doc 0 ---\n" + rendered["prompt"] + "\n"


def test_every_family_has_tasks():
    names = leaf_task_names()
    for family in FAMILIES:
        assert any(name.startswith(f"icl_ft_{family}_") for name in names), family
    assert all(name.startswith("icl_ft_") for name in names)


@pytest.mark.parametrize("name", leaf_task_names())
def test_golden_prompt(task_manager, name):
    task = task_manager.load([name])["tasks"][name]
    text = golden_text(render(task))
    path = GOLDEN_DIR / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file for {name}; create it with ICL_FT_UPDATE_GOLDEN=1"
    expected = path.read_text()
    if text != expected:
        golden_version = json.loads(expected.partition("\n")[0])["version"]
        current_version = render(task)["version"]
        assert golden_version != current_version, (
            f"{name}: the prompt or data changed but metadata.version is still {current_version}; "
            "bump the family's version, then regenerate the golden files"
        )
        pytest.fail(
            f"{name}: version bumped to {current_version}; regenerate the golden files (ICL_FT_UPDATE_GOLDEN=1)"
        )


@pytest.mark.parametrize("name", leaf_task_names())
def test_prompt_contracts_hold_for_every_doc(task_manager, name):
    task = task_manager.load([name])["tasks"][name]
    assert task.config.num_fewshot == 0  # --num_fewshot cannot leak test answers into prompts
    assert task.config.target_delimiter == " "
    for doc in task.test_docs():
        prompt = task.doc_to_text(doc)
        assert prompt == prompt.rstrip(), "doc_to_text must not end in whitespace (target_delimiter adds it)"
        if generative(task):  # a target to generate, one line long
            target = task.doc_to_target(doc)
            assert target and target == target.strip() and "\n" not in target
            assert "\n" in task.config.generation_kwargs["until"]
        else:
            choices = task.doc_to_choice(doc)
            assert len(set(choices)) == len(choices) >= 2
            assert all(choice == choice.strip() for choice in choices)
        if name.endswith("_ft"):
            assert prompt == "- " + doc["query"]
        else:
            assert prompt.endswith("\n\n- " + doc["query"])
            assert all(f"- {fact}\n" in prompt for fact in doc["facts"])


def test_icl_prompts_of_a_task_share_the_whole_fact_block(task_manager):
    task = task_manager.load(["icl_ft_reversal_forward_icl"])["tasks"]["icl_ft_reversal_forward_icl"]
    prompts = [task.doc_to_text(doc) for doc in task.test_docs()]
    prefix = os.path.commonprefix(prompts)
    assert all(fact in prefix for fact in task.test_docs()[0]["facts"])


@pytest.mark.parametrize("family", FAMILIES)
def test_family_yaml_version_matches_generator_version(family):
    base = yaml.safe_load((TASKS_DIR / family / f"_{family}_base.yaml").read_text())
    generator = importlib.import_module(f"lm_eval_tasks.{family}.generator")
    assert str(base["metadata"]["version"]) == generator.VERSION


def test_metadata_seed_changes_the_data(tmp_path):
    from lm_eval.tasks import TaskManager

    name = "icl_ft_reversal_forward_ft"
    default = TaskManager(include_defaults=False).load([name])["tasks"][name]
    seeded = TaskManager(include_defaults=False, metadata={"seed": 7}).load([name])["tasks"][name]
    assert default.doc_to_text(default.test_docs()[0]) != seeded.doc_to_text(seeded.test_docs()[0])
