"""The process family's tasks: groups as lm-eval loads them, and a real `lm_eval` run on a tiny random model."""

from __future__ import annotations

import pytest
import yaml

from lm_eval_tasks import TASKS_DIR
from lm_eval_tasks.process.scoring import score_generation
from tests.test_lm_eval_cli import LIMIT, results_and_samples, run_lm_eval

# One split in both conditions and both variants (the splits share their YAML bases; every
# task's prompt is checked by tests/test_task_prompts.py).
CHOICE_TASKS = [f"icl_ft_process_heldout_{condition}" for condition in ("icl", "ft")]
GENERATIVE_TASKS = [f"icl_ft_process_heldout_gen_{condition}" for condition in ("icl", "ft")]


def test_groups_hold_every_split_in_each_condition_and_icl_ft_holds_the_family():
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_defaults=False)
    splits = ("seen", "heldout", "deep")
    for group, suffix in (("icl_ft_process", ""), ("icl_ft_process_gen", "_gen")):
        loaded = manager.load([group])
        expected = {f"icl_ft_process_{split}{suffix}_{condition}" for split in splits for condition in ("icl", "ft")}
        assert set(loaded["tasks"]) == expected
        assert {f"{group}_icl", f"{group}_ft"} <= set(loaded["groups"])
    assert "icl_ft_process" in yaml.safe_load((TASKS_DIR / "_icl_ft.yaml").read_text())["task"]


@pytest.mark.integration
def test_lm_eval_scores_the_process_tasks_with_no_flag(tiny_model, tmp_path):
    run_lm_eval(tiny_model("llama"), ",".join(CHOICE_TASKS + GENERATIVE_TASKS), tmp_path / "out")
    results, samples = results_and_samples(tmp_path / "out")
    for name in CHOICE_TASKS:
        assert 0.0 <= results["results"][name]["acc,none"] <= 1.0
        assert len(samples[name]) == LIMIT
    for name in GENERATIVE_TASKS:
        assert 0.0 <= results["results"][name]["exact_match,none"] <= 1.0
        assert len(samples[name]) == LIMIT
        for sample in samples[name]:  # lm-eval called our scorer on what the model wrote
            generation = sample["resps"][0][0]
            expected = score_generation(generation, sample["doc"]["answer"], sample["doc"]["primitives"])
            assert (sample["exact_match"], sample["parsed"]) == (expected["exact_match"], expected["parsed"])
    declared = yaml.safe_load((TASKS_DIR / "process" / "_process_base.yaml").read_text())["metadata"]["version"]
    assert results["versions"]["icl_ft_process_heldout_icl"] == declared
