"""The semantic family against the embedded model's tokenizer (SmolLM2, 8192-token context)."""

from __future__ import annotations

import pytest

from lm_eval_tasks.api import generate_family

SMOLLM2_CONTEXT = 8192
SMALL_TRAINING_SET_MAX_TOKENS = 3500  # the whole small training set, with room for the question


@pytest.fixture(scope="module")
def tokenizer(smollm2_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_path)


def icl_prefix_tokens(tokenizer, data) -> int:
    """Tokens of what the ICL template renders before the question: one document per line."""
    return len(tokenizer("".join(document + "\n" for document in data.icl_facts))["input_ids"])


@pytest.mark.slow
def test_small_training_set_fits_smollm2_context_with_room(tokenizer):
    data = generate_family("semantic", preset="small")
    assert len(data.icl_facts) == len(data.train)
    assert icl_prefix_tokens(tokenizer, data) <= SMALL_TRAINING_SET_MAX_TOKENS


@pytest.mark.slow
def test_icl_subsample_respects_the_token_budget_in_real_tokens(tokenizer):
    """The characters-per-token estimate must overestimate SmolLM2's count, never under."""
    data = generate_family("semantic", preset="paper")  # the budget follows an 8,192-token context
    assert len(data.icl_facts) < len(data.train)
    tokens = icl_prefix_tokens(tokenizer, data)
    assert tokens <= data.coverage["budget_tokens"] < SMOLLM2_CONTEXT
    longest_query = max(len(tokenizer(row["query"])["input_ids"]) for rows in data.tests.values() for row in rows)
    assert tokens + longest_query + 16 < SMOLLM2_CONTEXT
