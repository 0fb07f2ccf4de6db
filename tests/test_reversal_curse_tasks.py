"""The reversal_curse lm-eval tasks: shared prefix, groups, lm-eval on the original format.

Golden prompts and the whitespace contract of these tasks are checked with every other
family's in tests/test_task_prompts.py. A Faker release that changed its en_US name lists
would show up there first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.internals  # relies on lm-eval's internals: `make test-latest` runs it

FIXTURE = Path(__file__).parent / "fixtures" / "reversal_curse_original"
SPLITS = ("forward", "reverse")
TASKS = [f"icl_ft_reversal_curse_{split}_{condition}" for split in SPLITS for condition in ("icl", "ft")]


@pytest.fixture(scope="module")
def tasks():
    from lm_eval.tasks import TaskManager, get_task_dict

    return get_task_dict(TASKS, TaskManager(include_defaults=False))


def test_icl_prompts_share_one_prefix_and_end_with_the_ft_prompt(tasks):
    for split in SPLITS:
        icl, ft = tasks[f"icl_ft_reversal_curse_{split}_icl"], tasks[f"icl_ft_reversal_curse_{split}_ft"]
        prefixes = set()
        for icl_doc, ft_doc in zip(icl.test_docs(), ft.test_docs(), strict=True):
            icl_prompt, ft_prompt = icl.doc_to_text(icl_doc), ft.doc_to_text(ft_doc)
            assert icl_prompt.endswith("\n\n" + ft_prompt)
            prefixes.add(icl_prompt[: -len(ft_prompt)])
        assert len(prefixes) == 1, split


def test_family_groups_are_registered_under_icl_ft():
    from lm_eval.tasks import TaskManager

    loaded = TaskManager(include_defaults=False).load(["icl_ft"])
    assert set(TASKS) <= set(loaded["tasks"])
    assert {"icl_ft_reversal_curse", "icl_ft_reversal_curse_icl", "icl_ft_reversal_curse_ft"} <= set(loaded["groups"])


@pytest.mark.integration
def test_lm_eval_scores_the_original_format_given_by_metadata(tiny_model):
    """What `lm_eval ... --metadata '{"source_dir": DIR}'` does, on the fixture files."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tiny_model("llama")), "device": "cpu"},
        tasks=["icl_ft_reversal_curse_reverse_icl", "icl_ft_reversal_curse_forward_ft"],
        task_manager=TaskManager(include_defaults=False, metadata={"source_dir": str(FIXTURE)}),
        limit=4,
        batch_size=4,
        log_samples=True,
    )
    assert 0.0 <= results["results"]["icl_ft_reversal_curse_reverse_icl"]["acc,none"] <= 1.0
    sample = results["samples"]["icl_ft_reversal_curse_reverse_icl"][0]
    context, continuation = sample["arguments"][0]  # (context, continuation) of the first choice
    assert "Odessa Fairweather is widely known as" in context  # a fixture fact in the ICL prompt
    assert continuation.startswith(" ") and continuation.strip().rstrip(".") in context
