"""Fitting documents into a token budget: the token estimate, and the subsampler of augmentation contexts.

When a training set is longer than a model's context can hold, a seeded random subset that
fits is shown instead, in training order, as the paper subsampled its largest ICL contexts.
Augment's global-mode context goes through `subsample_to_budget`; the ICL prompt of every
family is chosen by the facts its test items need (`lm_eval_tasks.icl_context`, which sizes
documents with `estimate_tokens` too). Where no tokenizer is at hand, `estimate_tokens` sizes a document.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

# SmolLM2 reads the nonsense-word text of these families at about 3 characters per token
# (nonsense words split into 2-3 pieces); 2.6 keeps the estimate on the safe side.
# tests/test_semantic_model.py checks it with the real tokenizer.
CHARS_PER_TOKEN = 2.6


def estimate_tokens(text: str) -> int:
    """A tokenizer-free upper estimate of `text`'s token count (+1 for the line break after it)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) + 1


def fit_to_budget(sizes: Sequence[int], budget: int, rng: random.Random) -> list[int]:
    """Indices (ascending) of the items kept: all if they fit, else drawn in a random order while they fit."""
    if sum(sizes) <= budget:
        return list(range(len(sizes)))
    order = list(range(len(sizes)))
    rng.shuffle(order)
    kept, used = [], 0
    for index in order:
        if used + sizes[index] <= budget:
            kept.append(index)
            used += sizes[index]
    return sorted(kept)


def subsample_to_budget(
    texts: Sequence[str], budget: int, rng: random.Random, size: Callable[[str], int] = estimate_tokens
) -> list[str]:
    """The texts that fit `budget` tokens (each costing `size(text)`), in their original order."""
    return [texts[index] for index in fit_to_budget([size(text) for text in texts], budget, rng)]
