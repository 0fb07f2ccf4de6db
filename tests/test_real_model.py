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

# Every family's FT condition (bare questions: cheap even with `hf`).
FT_GROUPS = ["icl_ft_reversal_ft", "icl_ft_syllogism_ft", "icl_ft_reversal_curse_ft", "icl_ft_semantic_ft"]
ICL_TASK = "icl_ft_reversal_forward_icl"
# Docs per no-context task: whole splits except semantic's larger ones, whose first 96 rows are
# 12 whole Latin-square groups of every relation (the rows are interleaved so that a prefix is a
# fair sample); enough for a binomial test, cheap enough for CI.
NO_CONTEXT_LIMIT = 96
# One test per split (10): Bonferroni keeps the chance of a false alarm on any of them at 5%.
FAMILY_WISE_ALPHA = 0.05
# The fact-blind ceiling where it is above 1/choices: "No" is never a syllogism's answer (a valid
# No-conclusion holds both ways round), so a model that never prefers it guesses among four
# (lm_eval_tasks/syllogism/README.md, "Chance level"; the audit's chance for that family).
FACT_BLIND_CEILING = {"icl_ft_syllogism_deduction_ft": 0.25}


def evaluate(model_path, tasks, model="hf", limit=None):
    """{leaf task: [(correct, chance of its doc)]} from lm-eval's samples; `model` a name or an LM instance."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    output = simple_evaluate(
        model=model,
        model_args=f"pretrained={model_path},dtype=float32" if isinstance(model, str) else None,
        tasks=tasks,
        device="cpu",
        batch_size=8,
        limit=limit,
        log_samples=True,
        task_manager=TaskManager(include_defaults=False),
    )
    return {
        name: [(sample["acc"], 1 / len(sample["doc"]["choices"])) for sample in samples]
        for name, samples in output["samples"].items()
    }


def test_no_context_control_sits_at_chance(smollm2_path):
    scored = evaluate(smollm2_path, FT_GROUPS, limit=NO_CONTEXT_LIMIT)
    assert len(scored) >= 10  # 2 reversal + 1 syllogism + 2 reversal_curse + 5 semantic splits
    above = []
    for name, rows in scored.items():
        k, n = int(sum(correct for correct, _ in rows)), len(rows)
        chance = FACT_BLIND_CEILING.get(name, sum(p for _, p in rows) / n)
        p_value = binomtest(k, n, chance, alternative="greater").pvalue
        if p_value <= FAMILY_WISE_ALPHA / len(scored):
            above.append(f"{name}: {k}/{n} correct without facts, chance {chance:.3f} (p={p_value:.3g})")
    assert above == []


def test_icl_recalls_the_trained_direction_above_chance(smollm2_path):
    """The whole split, scored with hf-prefix (the same log-likelihoods as hf, >10x faster)."""
    from icl_ft.prefix_scorer import PrefixCachingHFLM

    lm = PrefixCachingHFLM(pretrained=str(smollm2_path), dtype="float32", device="cpu", batch_size=8)
    # Checked first: scored as `hf` instead, this test would run for more than half an hour.
    assert lm.prefix_reuse.mode == "tree attention", lm.prefix_reuse.describe()
    rows = evaluate(smollm2_path, [ICL_TASK], model=lm)[ICL_TASK]
    assert set(lm.prefix_requests) == {"prefix cache, tree attention"}, lm.prefix_requests
    k, n = int(sum(correct for correct, _ in rows)), len(rows)
    assert n == 100
    assert binomtest(k, n, 0.5, alternative="greater").pvalue < 0.01, f"ICL forward: only {k}/{n}"
