"""Fact-blind shortcut baselines for the process family's multiple-choice items.

Each baseline picks a choice from its surface alone, never from the rules, by one feature:
length, number of terms, token overlap with the input expression, the share of its
function names that the input uses, how many of the input's function applications it
copies verbatim (a reader that copies the question), the frequency of its tokens in the
training documents (a reader that learned only their unigram statistics), a copying
trigram model that knows only the question, the number of distinct function names, and a
surface model of what a language model without the rules prefers (`SURFACE_MODEL`),
plus each fixed position. For every feature there are four strategies: pick the choice
with the highest value, pick the lowest, avoid the highest (pick uniformly among the
others) and avoid the lowest; "avoid" turns a feature on which the answer is rarely
extreme into a strategy that would beat chance.

The generator balances the items against these features (`correct_rank_distribution`);
`shortcut_failures` reports every strategy whose accuracy is above the upper end of the
99% binomial interval of chance (`chance_interval`), and the tests require none. The
audit can call `baseline_accuracies` and `shortcut_failures` on any rows.

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
    "input_names": ("most_input_names", "fewest_input_names"),
    "copies": ("most_copied", "fewest_copied"),
    "familiarity": ("most_familiar_tokens", "least_familiar_tokens"),
    "copy_model": ("likeliest_to_a_copying_model", "least_likely_to_a_copying_model"),
    "distinct_names": ("most_distinct_names", "fewest_distinct_names"),
    "surface_model": ("likeliest_to_a_surface_model", "least_likely_to_a_surface_model"),
}
# A linear model of what a language model without the rules prefers among one item's
# choices: least squares, within items, on SmolLM2-135M-Instruct's no-context
# log-likelihoods of two drafts of this family (288 items, within-item R^2 0.82 and 0.87;
# the coefficients agreed within 20% across drafts). It prefers choices made of the
# question's own function names, few distinct names, sequences the question contains,
# fewer tokens and more terms. Refit with benchmarks/process_surface_model.py.
SURFACE_MODEL = {"input_names": 19.0, "distinct_names": -5.5, "copy_model": 0.5, "tokens": -0.3, "terms": 2.0}
# The copying model: trigram probabilities from the text seen so far, mixed with its
# unigram frequencies (add-half smoothing over a vocabulary of this size).
COPY_MODEL_MIX = 0.5
COPY_MODEL_VOCABULARY = 30


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


def applications(text: str) -> set[str]:
    """Every function application written in `text` ("smosk(keku(x))", "keku(x)", ...)."""
    found = set()
    for match in re.finditer(r"[A-Za-z_]\w*\(", text):
        level = 0
        for end in range(match.end() - 1, len(text)):
            level += {"(": 1, ")": -1}.get(text[end], 0)
            if level == 0:
                found.add(text[match.start() : end + 1])
                break
    return found


def copies(text: str, expression: str) -> float:
    """How many of the input's function applications `text` contains verbatim (a long copy
    counts once for each application inside it)."""
    return float(sum(application in text for application in applications(expression)))


def input_names(text: str, expression: str) -> float:
    """The share of `text`'s function names that the input uses too (an answer made of the
    question's own names looks likelier to a reader that does not know the table)."""
    names = re.findall(r"[A-Za-z_]\w*(?=\()", text)
    used = set(re.findall(r"[A-Za-z_]\w*(?=\()", expression))
    return sum(name in used for name in names) / len(names) if names else 0.0


def copy_model_logprob(text: str, question: str) -> float:
    """Log-probability of `text` after `question` under a trigram model that knows nothing
    but the question and `text`'s own preceding tokens (a fact-blind model that copies)."""
    history = tokens(question)
    unigrams = collections.Counter(history)
    following: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    for first, second, third in zip(history, history[1:], history[2:]):
        following[first, second][third] += 1
    total = 0.0
    for token in tokens(text):
        context = tuple(history[-2:])
        seen = following.get(context)
        trigram = seen[token] / seen.total() if seen else 0.0
        unigram = (unigrams[token] + 0.5) / (len(history) + 0.5 * COPY_MODEL_VOCABULARY)
        total += math.log(COPY_MODEL_MIX * trigram + (1 - COPY_MODEL_MIX) * unigram)
        if len(context) == 2:
            following[context][token] += 1
        unigrams[token] += 1
        history.append(token)
    return total


def distinct_names(text: str) -> float:
    """How many different function names `text` uses."""
    return float(len(set(re.findall(r"[A-Za-z_]\w*(?=\()", text))))


def familiarity(text: str, counts: collections.Counter) -> float:
    """Mean log frequency of `text`'s tokens in the reference texts."""
    found = tokens(text)
    return sum(math.log1p(counts[t]) for t in found) / len(found) if found else 0.0


def choice_features(
    query: str, expression: str, choices: Sequence[str], counts: collections.Counter
) -> dict[str, list[float]]:
    """Every feature of every choice of one item (`expression`: the input as written; the
    copying model reads the question as the FT prompt writes it, "- <query>")."""
    question = f"- {query}"
    features = {
        "length": [float(len(c)) for c in choices],
        "terms": [float(top_level_terms(c)) for c in choices],
        "input_overlap": [overlap(c, expression) for c in choices],
        "input_names": [input_names(c, expression) for c in choices],
        "copies": [copies(c, expression) for c in choices],
        "familiarity": [familiarity(c, counts) for c in choices],
        "copy_model": [copy_model_logprob(c, question) for c in choices],
        "distinct_names": [distinct_names(c) for c in choices],
    }
    counted = {**features, "tokens": [float(len(tokens(c))) for c in choices]}
    features["surface_model"] = [
        sum(weight * counted[name][i] for name, weight in SURFACE_MODEL.items()) for i in range(len(choices))
    ]
    return features


def correct_rank_distribution(scores: Sequence[float], label: int) -> list[float]:
    """P(the correct choice has rank r), r = 0 for the highest score, under uniform tie-breaking."""
    above = sum(s > scores[label] for s in scores)
    tied = sum(s == scores[label] for s in scores)  # includes the correct choice
    return [1.0 / tied if above <= r < above + tied else 0.0 for r in range(len(scores))]


def baseline_accuracies(rows: Sequence[dict], reference_texts: Iterable[str]) -> dict[str, float]:
    """Expected accuracy of every fact-blind strategy on `rows` (test rows with "query",
    "expression", "choices", "label"), token frequencies taken from `reference_texts`.

    For a feature's baseline `name` (picks the extreme choice), `avoid_<name>` picks
    uniformly among the other choices: accuracy (1 - accuracy of `name`) / (choices - 1).
    """
    counts = token_counts(reference_texts)
    hits: collections.Counter = collections.Counter()
    for row in rows:
        choices, label = row["choices"], row["label"]
        for feature, scores in choice_features(row["query"], row["expression"], choices, counts).items():
            ranks = correct_rank_distribution(scores, label)
            highest, lowest = FEATURES[feature]
            hits[highest] += ranks[0]
            hits[lowest] += ranks[-1]
        for position in range(len(choices)):
            hits[f"position_{position}"] += label == position
    accuracies = {name: hits[name] / len(rows) for name in hits}
    others = len(rows[0]["choices"]) - 1
    for name in [n for pair in FEATURES.values() for n in pair]:
        accuracies[f"avoid_{name}"] = (1 - accuracies[name]) / others
    return dict(sorted(accuracies.items()))


def chance_interval(n: int, chance: float, alpha: float = 0.01) -> tuple[float, float]:
    """The two-sided (1 - alpha) interval of a fact-blind guesser's accuracy on n items:
    accuracies outside it are significantly different from chance (exact binomial)."""
    from scipy.stats import binom

    return float(binom.ppf(alpha / 2, n, chance)) / n, float(binom.isf(alpha / 2, n, chance)) / n


def shortcut_failures(rows: Sequence[dict], reference_texts: Iterable[str], alpha: float = 0.01) -> list[str]:
    """One line per fact-blind strategy that beats chance: accuracy above the upper end of
    the (1 - alpha) interval of chance. Empty when none does."""
    chance = 1 / len(rows[0]["choices"])
    _, high = chance_interval(len(rows), chance, alpha)
    return [
        f"{name}: accuracy {accuracy:.3f} above {high:.3f}, the {1 - alpha:.0%} bound of chance "
        f"{chance:.3f} for n={len(rows)}"
        for name, accuracy in baseline_accuracies(rows, reference_texts).items()
        if accuracy > high
    ]
