"""The semantic family's lm-eval tasks: registration under `icl_ft`, options through metadata.

Golden prompts and the prompt contracts (whitespace, num_fewshot, ICL prompt = facts +
query) of every leaf task, semantic included, live in tests/test_task_prompts.py.
"""

from __future__ import annotations

import pytest

from lm_eval_tasks.semantic.questions import SPLITS

pytestmark = pytest.mark.internals  # relies on lm-eval's internals: `make test-latest` runs it

TASKS = [f"icl_ft_semantic_{split}_{condition}" for split in SPLITS for condition in ("icl", "ft")]


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
