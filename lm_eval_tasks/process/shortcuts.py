"""Fact-blind shortcut baselines for the process family's multiple-choice items.

Each baseline picks a choice from its surface alone, never from the rules: the longest or
shortest, the one with the most or fewest terms, the one most or least like the input
expression (a model that copies the question), the one whose tokens are most or least
frequent in the training documents (a model that learned only their unigram statistics),
or a fixed position. A baseline that scores above chance reveals an artifact a model
could use without knowing the procedure; one far below chance reveals one too (its
opposite scores above). The generator balances the items against these features
(`correct_rank_distribution`), and the tests check every baseline against the binomial
bound of `chance_interval`; the audit can call `baseline_accuracies` on any rows.

Ties count as a uniform random pick among the tied choices (expected accuracy).
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Iterable, Sequence

_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+|\*\*|[()+*^\[\]=-]")
# feature name -> (baseline that picks the highest value, baseline that picks the lowest)
FEATURES = {
    "length": ("longest", "shortest"),
    "terms": ("most_terms", "fewest_terms"),
    "input_overlap": ("most_like_input", "least_like_input"),
    "familiarity": ("most_familiar_tokens", "least_familiar_tokens"),
}


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def token_counts(texts: Iterable[str]) -> collections.Counter:
    """Unigram counts of the reference texts (the training documents) for `familiarity`."""
    counts: collections.Counter = collections.Counter()
    for text in texts:
        counts.update(tokens(text))
    return counts


def top_level_terms(text: str) -> int:
    """How many terms a written sum has at the top level (1 for a non-sum)."""
    level, terms = 0, 1
    for token in tokens(text):
        if token == "(":
            level += 1
        elif token == ")":
            level -= 1
        elif token in "+-" and level == 0:
            terms += 1
    return terms


def overlap(a: str, b: str) -> float:
    """Jaccard similarity of the token multisets of `a` and `b`."""
    ta, tb = collections.Counter(tokens(a)), collections.Counter(tokens(b))
    union = sum((ta | tb).values())
    return sum((ta & tb).values()) / union if union else 0.0


def familiarity(text: str, counts: collections.Counter) -> float:
    """Mean log frequency of `text`'s tokens in the reference texts."""
    found = tokens(text)
    return sum(math.log1p(counts[t]) for t in found) / len(found) if found else 0.0


def choice_features(expression: str, choices: Sequence[str], counts: collections.Counter) -> dict[str, list[float]]:
    """Every feature of every choice of one item (`expression`: the input as written)."""
    return {
        "length": [float(len(c)) for c in choices],
        "terms": [float(top_level_terms(c)) for c in choices],
        "input_overlap": [overlap(c, expression) for c in choices],
        "familiarity": [familiarity(c, counts) for c in choices],
    }


def correct_rank_distribution(scores: Sequence[float], label: int) -> list[float]:
    """P(the correct choice has rank r), r = 0 for the highest score, under uniform tie-breaking."""
    above = sum(s > scores[label] for s in scores)
    tied = sum(s == scores[label] for s in scores)  # includes the correct choice
    return [1.0 / tied if above <= r < above + tied else 0.0 for r in range(len(scores))]


def baseline_accuracies(rows: Sequence[dict], reference_texts: Iterable[str]) -> dict[str, float]:
    """Expected accuracy of every fact-blind baseline on `rows` (test rows with
    "expression", "choices", "label"), token frequencies taken from `reference_texts`."""
    counts = token_counts(reference_texts)
    hits: collections.Counter = collections.Counter()
    for row in rows:
        choices, label = row["choices"], row["label"]
        for feature, scores in choice_features(row["expression"], choices, counts).items():
            ranks = correct_rank_distribution(scores, label)
            highest, lowest = FEATURES[feature]
            hits[highest] += ranks[0]
            hits[lowest] += ranks[-1]
        for position in range(len(choices)):
            hits[f"position_{position}"] += label == position
    return {name: hits[name] / len(rows) for name in sorted(hits)}


def chance_interval(n: int, chance: float, alpha: float = 0.01) -> tuple[float, float]:
    """The two-sided (1 - alpha) interval of a fact-blind guesser's accuracy on n items:
    accuracies outside it are significantly different from chance (exact binomial)."""
    from scipy.stats import binom

    return float(binom.ppf(alpha / 2, n, chance)) / n, float(binom.isf(alpha / 2, n, chance)) / n


def shortcut_failures(rows: Sequence[dict], reference_texts: Iterable[str], alpha: float = 0.01) -> list[str]:
    """One line per baseline outside the chance interval (empty when every baseline is at chance)."""
    chance = 1 / len(rows[0]["choices"])
    low, high = chance_interval(len(rows), chance, alpha)
    return [
        f"{name}: accuracy {accuracy:.3f} outside [{low:.3f}, {high:.3f}] (chance {chance:.3f}, n={len(rows)})"
        for name, accuracy in baseline_accuracies(rows, reference_texts).items()
        if not low <= accuracy <= high
    ]
