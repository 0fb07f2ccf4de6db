"""The semantic family's lm-eval tasks: golden prompts, whitespace contract, groups, a tiny-model run.

Regenerate the golden file after an intended prompt change with
`UPDATE_GOLDEN=1 python -m pytest tests/test_semantic_tasks.py` and review its diff.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from lm_eval_tasks.semantic.questions import SPLITS

GOLDEN = Path(__file__).with_name("golden") / "semantic_prompts.json"
TASKS = [f"icl_ft_semantic_{split}_{condition}" for split in SPLITS for condition in ("icl", "ft")]


@pytest.fixture(scope="module")
def tasks():
    from lm_eval.tasks import TaskManager, get_task_dict

    return get_task_dict(TASKS, TaskManager(include_defaults=False))


def _rendered(task, doc) -> dict:
    prompt = task.doc_to_text(doc)
    lines = prompt.split("\n")
    rendered = {"choices": task.doc_to_choice(doc), "target": task.doc_to_target(doc)}
    if len(lines) == 1:
        rendered["prompt"] = prompt
    else:  # an ICL prompt: a few thousand tokens of documents, pinned by hash
        rendered.update(
            prompt_first_lines=lines[:2],
            prompt_last_lines=lines[-3:],
            prompt_lines=len(lines),
            prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(),
        )
    return rendered


def test_golden_prompt_of_the_first_doc_of_every_task(tasks):
    rendered = {name: _rendered(task, task.test_docs()[0]) for name, task in sorted(tasks.items())}
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(rendered, indent=1, ensure_ascii=False) + "\n")
    assert rendered == json.loads(GOLDEN.read_text())


def test_whitespace_contract_on_every_doc(tasks):
    for name, task in tasks.items():
        assert task.config.target_delimiter == " ", name
        for doc in task.test_docs():
            prompt = task.doc_to_text(doc)
            assert prompt == prompt.rstrip(), (name, doc["id"])
            assert all(choice and not choice[0].isspace() for choice in task.doc_to_choice(doc)), (name, doc["id"])


def test_icl_prompts_share_one_prefix_and_end_with_the_ft_prompt(tasks):
    for split in SPLITS:
        icl, ft = tasks[f"icl_ft_semantic_{split}_icl"], tasks[f"icl_ft_semantic_{split}_ft"]
        prefixes = set()
        for icl_doc, ft_doc in zip(icl.test_docs(), ft.test_docs()):
            icl_prompt, ft_prompt = icl.doc_to_text(icl_doc), ft.doc_to_text(ft_doc)
            assert icl_prompt.endswith("\n\n" + ft_prompt)
            prefixes.add(icl_prompt[: -len(ft_prompt)])
        assert len(prefixes) == 1, split


def test_family_groups_are_registered_under_icl_ft():
    from lm_eval.tasks import TaskManager

    loaded = TaskManager(include_defaults=False).load(["icl_ft"])
    assert set(TASKS) <= set(loaded["tasks"])
    assert {"icl_ft_semantic", "icl_ft_semantic_icl", "icl_ft_semantic_ft"} <= set(loaded["groups"])


@pytest.mark.integration
def test_lm_eval_runs_an_icl_task_with_metadata_options_on_a_tiny_model(tiny_model):
    import lm_eval
    from lm_eval.tasks import TaskManager

    metadata = {"num_categories": 16, "num_holdout": 2, "num_documents": 16}
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tiny_model("llama")), "device": "cpu"},
        tasks=["icl_ft_semantic_syllogism_icl"],
        task_manager=TaskManager(include_defaults=False, metadata=metadata),
        limit=8,
        batch_size=4,
        log_samples=True,
    )
    accuracy = results["results"]["icl_ft_semantic_syllogism_icl"]["acc,none"]
    assert 0.0 <= accuracy <= 1.0
    sample = results["samples"]["icl_ft_semantic_syllogism_icl"][0]
    context = sample["arguments"][0][0]  # (context, continuation) of the first choice
    assert context.count("\n") == metadata["num_documents"] + 1  # one line per document, then a blank line
