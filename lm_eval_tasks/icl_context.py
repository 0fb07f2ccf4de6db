"""What the ICL prompt shows, chosen by the facts the test items need, and which items are scored.

Every family's generator annotates its data with opaque fact keys (`FamilyData.icl_fact_keys`,
`train_fact_keys`: the facts each ICL candidate or training document states;
`test_needs`: the facts each test row needs). `scored_view` then chooses the ICL context:

1. If every candidate fits the token budget, all are shown (reversal, syllogism,
   reversal_curse and semantic `small` on an 8k-context model).
2. Otherwise candidates are chosen by greedy set cover: repeatedly the candidate that states
   the most still-uncovered needed facts per token, while it fits the budget. Then
   candidates drawn in a seeded random order fill the context up to an eighth of the whole
   training text (the paper subsampled its largest datasets 8x for ICL), never beyond the
   budget. The chosen candidates keep their training order.
3. A test row whose needed facts are not all in the chosen context is scored in NEITHER
   condition: ICL and FT always score the same items. `FamilyData.coverage` reports the
   context size and the items kept and dropped per split.

The budget is in estimated tokens (`context_budget.estimate_tokens`: characters / 2.6, which overestimates
SmolLM2's count of this text; tests/test_semantic_model.py checks it with the real
tokenizer). It is the `icl_token_budget` data option when given, else the model's context
length less room for the longest question (`question_reserve`); lm-eval passes the model
arguments to the data function, so under `lm_eval` the budget follows `pretrained=`'s
config (see `lm_eval_tasks.metadata`). Without a model it follows DEFAULT_CONTEXT_TOKENS.
Given seed, options and budget, the choice is deterministic.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import TYPE_CHECKING, Any

from lm_eval_tasks.context_budget import estimate_tokens

if TYPE_CHECKING:
    from lm_eval_tasks.spec import FamilyData

ICL_CONTEXT_CHOICES = ("facts", "train")
# Options every family takes on top of its generator's (0: follow the model's context length).
GENERIC_OPTIONS: dict[str, Any] = {"icl_context": "facts", "icl_token_budget": 0}
# The context length assumed when no model is known: the embedded SmolLM2-135M-Instruct's.
DEFAULT_CONTEXT_TOKENS = 8192
# Beyond the longest question and choice: bullets, a blank line, a chat template's markers.
QUESTION_MARGIN_TOKENS = 32
# The paper showed "randomly subsampled" documents of its largest datasets: an eighth of them.
PAPER_SUBSAMPLE = 8


def question_reserve(tests: dict[str, list[dict]]) -> int:
    """Estimated tokens to leave after the context: the longest question and choice, and a margin."""
    rows = [row for rows in tests.values() for row in rows]
    if not rows:
        return QUESTION_MARGIN_TOKENS
    longest_query = max(estimate_tokens(row["query"]) for row in rows)
    longest_choice = max(estimate_tokens(choice) for row in rows for choice in row["choices"])
    return longest_query + longest_choice + QUESTION_MARGIN_TOKENS


def choose_context(
    costs: list[int], states: list[frozenset], needed: frozenset | dict, budget: int, rng: random.Random
) -> list[int]:
    """Indices of the candidates to show: all if they fit, else a greedy cover of `needed` plus a fill.

    `needed` maps each needed fact to its weight (a set weighs every fact 1); the greedy step
    takes the candidate with the most weight of still-uncovered facts per token."""
    total = sum(costs)
    if total <= budget:
        return list(range(len(costs)))
    order = list(range(len(costs)))
    rng.shuffle(order)  # breaks ties between equally good candidates, reproducibly
    weight = needed if isinstance(needed, dict) else dict.fromkeys(needed, 1.0)
    chosen: set[int] = set()
    used = 0
    uncovered = set(weight)
    while uncovered:
        best, best_gain = None, 0.0
        for index in order:
            if index in chosen or used + costs[index] > budget:
                continue
            gain = sum(weight[fact] for fact in states[index] & uncovered) / costs[index]
            if gain > best_gain:
                best, best_gain = index, gain
        if best is None:
            break  # nothing left that fits and helps: the rest stays uncovered
        chosen.add(best)
        used += costs[best]
        uncovered -= states[best]
    fill_to = min(budget, max(used, math.ceil(total / PAPER_SUBSAMPLE)))
    for index in order:
        if index not in chosen and used + costs[index] <= fill_to:
            chosen.add(index)
            used += costs[index]
    return sorted(chosen)


def scored_view(
    data: FamilyData, icl_context: str, icl_token_budget: int, context_tokens: int | None, budget_source: str
) -> FamilyData:
    """`data` with the ICL context chosen and only the test rows that context covers."""
    from lm_eval_tasks.errors import DataError

    if icl_context not in ICL_CONTEXT_CHOICES:
        raise DataError(f"icl_context={icl_context!r}; choose one of {list(ICL_CONTEXT_CHOICES)}")
    if icl_token_budget < 0:
        raise DataError(f"icl_token_budget={icl_token_budget}: must be >= 0 (0 follows the model's context length)")
    if icl_token_budget:
        budget, source = icl_token_budget, "icl_token_budget option"
    else:
        context_tokens = context_tokens or DEFAULT_CONTEXT_TOKENS
        budget, source = context_tokens - question_reserve(data.tests), budget_source
    if icl_context == "facts":
        texts, states = list(data.icl_facts), data.icl_fact_keys
    else:
        texts, states = [row["text"] for row in data.train], data.train_fact_keys
    annotated = len(states) == len(texts) and set(data.test_needs) == set(data.tests)
    costs = [estimate_tokens(text) for text in texts]
    rng = random.Random(f"{data.family}-icl-context-{data.seed}")
    if annotated:
        frozen = [frozenset(keys) for keys in states]
        # A fact weighs what it contributes to completing items: each row spreads 1 over the facts it needs.
        needed: dict[str, float] = {}
        for needs in data.test_needs.values():
            for keys in needs:
                for key in keys:
                    needed[key] = needed.get(key, 0.0) + 1 / len(keys)
        kept = choose_context(costs, frozen, needed, budget, rng)
        shown = frozenset(key for index in kept for key in frozen[index])
        covered = {split: [set(keys) <= shown for keys in data.test_needs[split]] for split in data.tests}
    else:  # a family without annotations: no coverage can be checked, every item is kept
        kept = choose_context(costs, [frozenset()] * len(costs), frozenset(), budget, rng)
        covered = {split: [True] * len(rows) for split, rows in data.tests.items()}
    tests = {split: [row for row, ok in zip(rows, covered[split]) if ok] for split, rows in data.tests.items()}
    needs = {
        split: [keys for keys, ok in zip(data.test_needs[split], covered[split]) if ok] for split in data.test_needs
    }
    coverage = {
        "icl_context": icl_context,
        "budget_tokens": budget,
        "budget_source": source,
        "documents_shown": len(kept),
        "documents_total": len(texts),
        "tokens_shown": sum(costs[i] for i in kept),
        "tokens_total": sum(costs),
        "checked": annotated,
        "items": {split: {"scored": len(tests[split]), "total": len(rows)} for split, rows in data.tests.items()},
        "dropped": {
            split: [row["id"] for row, ok in zip(rows, covered[split]) if not ok] for split, rows in data.tests.items()
        },
    }
    return dataclasses.replace(
        data,
        icl_facts=[texts[i] for i in kept],
        icl_fact_keys=[tuple(states[i]) for i in kept] if annotated else [],
        tests=tests,
        test_needs=needs,
        coverage=coverage,
    )
