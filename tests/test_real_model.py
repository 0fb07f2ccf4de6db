"""Behaviour on the embedded SmolLM2-135M-Instruct: the tasks measure what they claim.

- The no-context control (FT condition on the base model, which has seen no facts) is
  not significantly above chance on any split: counterbalancing works on a real model.
- In context, the model re-answers the trained direction of the reversal facts
  significantly above chance: the ICL prompt carries the facts.
"""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

pytestmark = pytest.mark.slow

FT_TASKS = ["icl_ft_reversal_forward_ft", "icl_ft_reversal_reverse_ft", "icl_ft_syllogism_deduction_ft"]
ICL_TASK = "icl_ft_reversal_forward_icl"
ICL_LIMIT = 40  # docs; each costs two full forwards of the ~1000-token prompt with the hf backend


def evaluate(model_path, tasks, limit=None):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    output = simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_path},dtype=float32",
        tasks=tasks,
        device="cpu",
        batch_size=1,
        limit=limit,
        log_samples=True,
        task_manager=TaskManager(include_defaults=False),
    )
    return {name: [s["acc"] for s in samples] for name, samples in output["samples"].items()}


def chance(task_name: str) -> float:
    return 1 / 6 if "syllogism" in task_name else 1 / 2


def test_no_context_control_sits_at_chance(smollm2_path):
    correct = evaluate(smollm2_path, FT_TASKS)
    for name in FT_TASKS:
        k, n = int(sum(correct[name])), len(correct[name])
        p_value = binomtest(k, n, chance(name), alternative="greater").pvalue
        assert p_value > 0.05, f"{name}: {k}/{n} correct without facts (p={p_value:.3g}); counterbalancing failed"


def test_icl_recalls_the_trained_direction_above_chance(smollm2_path):
    correct = evaluate(smollm2_path, [ICL_TASK], limit=ICL_LIMIT)[ICL_TASK]
    k, n = int(sum(correct)), len(correct)
    assert n == ICL_LIMIT
    assert binomtest(k, n, 0.5, alternative="greater").pvalue < 0.01, f"ICL forward: only {k}/{n}"
