"""The ICL context is chosen by the facts the test items need, within a budget; uncovered items are scored nowhere."""

from __future__ import annotations

import random

import pytest

from lm_eval_tasks.api import FAMILIES, build_task_dataset, generate_family
from lm_eval_tasks.icl_context import DEFAULT_CONTEXT_TOKENS, choose_context, estimate_tokens, question_reserve


def test_everything_is_shown_when_it_fits():
    assert choose_context([3, 4, 5], [frozenset()] * 3, frozenset(), budget=12, rng=random.Random(0)) == [0, 1, 2]


def test_greedy_cover_prefers_what_the_items_need_and_respects_the_budget():
    costs = [10, 10, 10, 30, 10]
    states = [frozenset("a"), frozenset("x"), frozenset("b"), frozenset("abc"), frozenset("c")]
    # Needed a, b, c: three 10-token documents (cost 30) or the one 30-token document that states all three.
    chosen = choose_context(costs, states, frozenset("abc"), budget=30, rng=random.Random(0))
    assert set().union(*(states[i] for i in chosen)) >= set("abc")
    assert sum(costs[i] for i in chosen) <= 30
    # Too small a budget covers what it can, never more than it allows.
    chosen = choose_context(costs, states, frozenset("abc"), budget=20, rng=random.Random(0))
    assert sum(costs[i] for i in chosen) <= 20 and len(set().union(*(states[i] for i in chosen)) & set("abc")) == 2


def test_fill_stops_at_an_eighth_of_the_training_text_when_the_budget_is_larger():
    costs = [10] * 80  # 800 tokens in all; an eighth is 100
    states = [frozenset({i}) for i in range(80)]
    chosen = choose_context(costs, states, frozenset({0}), budget=500, rng=random.Random(0))
    assert 0 in chosen and sum(costs[i] for i in chosen) == 100


@pytest.mark.parametrize("family", FAMILIES)
def test_default_instances_are_fully_covered_on_an_8k_model(family):
    data = generate_family(family, 0)
    assert data.coverage["budget_tokens"] == DEFAULT_CONTEXT_TOKENS - question_reserve(
        generate_family(family, 0, icl_token_budget=10**9).tests
    )
    assert all(not ids for ids in data.coverage["dropped"].values()), data.coverage["dropped"]
    assert sum(estimate_tokens(text) for text in data.icl_facts) <= data.coverage["budget_tokens"]


def test_an_explicit_budget_drops_the_same_items_from_both_conditions():
    icl = build_task_dataset(family="semantic", preset="paper", icl_token_budget=4000)
    data = generate_family("semantic", 0, preset="paper", icl_token_budget=4000)
    full = generate_family("semantic", 0, preset="paper")
    dropped = sum(len(ids) for ids in data.coverage["dropped"].values())
    assert 0 < dropped and sum(len(rows) for rows in data.tests.values()) + dropped == sum(
        len(rows) for rows in full.tests.values()
    )
    for split, rows in data.tests.items():  # the FT task's docs are the same rows (the tasks share the function)
        assert icl[split]["id"] == [row["id"] for row in rows]
    assert data.coverage["budget_source"] == "icl_token_budget option"
    assert sum(estimate_tokens(text) for text in data.icl_facts) <= 4000


def test_a_budget_that_leaves_a_split_empty_is_a_one_line_error():
    from lm_eval_tasks.errors import DataError

    with pytest.raises(DataError, match=r"covers no item of split\(s\) \['category_holdout'\]; raise icl_token_budget"):
        build_task_dataset(family="semantic", preset="paper", icl_token_budget=1500)


def test_train_context_covers_every_item_within_the_budget():
    """`icl_context=train`: 1,000 reversal training sentences (~15k tokens) do not fit 8k; the chosen ones cover all."""
    data = generate_family("reversal", 0, icl_context="train")
    assert len(data.icl_facts) < len(data.train)
    assert all(not ids for ids in data.coverage["dropped"].values())
    shown = " ".join(data.icl_facts)
    for row in data.tests["forward"]:
        subject = row["query"].split()[0]
        assert f"{subject} are {row['choices'][row['label']].removesuffix('.')}" in shown


@pytest.mark.integration
def test_under_lm_eval_the_budget_follows_the_model_args(tiny_model):
    """lm-eval's own simple_evaluate: max_length=512 shows fewer reversal facts, and scores fewer items."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={tiny_model('llama')},device=cpu,max_length=512",
        tasks=["icl_ft_reversal_forward_icl", "icl_ft_reversal_forward_ft"],
        task_manager=TaskManager(include_defaults=False),
        limit=2,
        log_samples=True,
    )
    icl = results["samples"]["icl_ft_reversal_forward_icl"][0]["doc"]
    assert 0 < len(icl["facts"]) < 100
    for name in ("icl_ft_reversal_forward_icl", "icl_ft_reversal_forward_ft"):
        assert 0 < results["n-samples"][name]["original"] < 100  # the uncovered items are in neither task
    assert results["n-samples"]["icl_ft_reversal_forward_icl"] == results["n-samples"]["icl_ft_reversal_forward_ft"]
