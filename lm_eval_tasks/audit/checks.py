"""The audit's checks, each a function of a family's data and its checker (see `checker.py`)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable
from typing import Any

from lm_eval_tasks.audit.checker import FACT_AWARE, FamilyChecker
from lm_eval_tasks.audit.heuristics import FACT_AWARE_HEURISTICS, Corpus, accuracy, fact_blind_heuristics

# `units_of(texts, unit)` -> [(context, target)]: how finetuning cuts documents into training
# units (finetune.data.make_units); passed in so that the audit follows the trainer.
UnitsOf = Callable[[list[str], str], list[tuple[str, str]]]
UNITS = ("sentence", "cumulative", "document")
# A shortcut fails when it beats the 99th percentile of Binomial(items, chance) / items.
CONFIDENCE = 0.99
MAX_EXAMPLES = 3


def binomial_bound(items: int, chance: float, confidence: float = CONFIDENCE) -> float:
    """The accuracy a fact-blind guesser exceeds with probability at most 1 - confidence, on `items` items."""
    from scipy.stats import binom

    return float(binom.ppf(confidence, items, chance)) / items


def _facts(checker: FamilyChecker, pairs: list[tuple[str, str]]) -> frozenset[Hashable]:
    return frozenset(fact for context, target in pairs for fact in checker.facts_in(context, target))


def _entailed(checker: FamilyChecker, facts: frozenset, tests: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """Per split: rows whose label follows from `facts`, and the first few that do not."""
    report = {}
    for split, rows in tests.items():
        missing = [row["id"] for row in rows if row["label"] not in checker.supported(facts, split, row)]
        report[split] = {
            "rows": len(rows),
            "entailed": len(rows) - len(missing),
            "not_entailed": missing[:MAX_EXAMPLES],
        }
    return report


def label_validity(checker: FamilyChecker) -> dict[str, dict[str, Any]]:
    """Per split: rows whose label is the only choice the whole training text supports."""
    facts = _facts(checker, [("", row["text"]) for row in checker.data.train])
    report = {}
    for split, rows in checker.data.tests.items():
        invalid = [row["id"] for row in rows if checker.supported(facts, split, row) != [row["label"]]]
        report[split] = {"rows": len(rows), "valid": len(rows) - len(invalid), "invalid": invalid[:MAX_EXAMPLES]}
    return report


def icl_coverage(checker: FamilyChecker) -> dict[str, Any]:
    """The chosen ICL context and, per split, the rows it entails (by the checker, not the generator)."""
    facts = _facts(checker, [("", text) for text in checker.data.icl_facts])
    context = {k: v for k, v in checker.data.coverage.items() if k != "dropped"}
    return {"context": context, "splits": _entailed(checker, facts, checker.data.tests)}


def learnability(checker: FamilyChecker, units_of: UnitsOf) -> dict[str, dict[str, Any]]:
    """Per finetuning unit: the training documents that state a fact no single unit of theirs states
    (`documents_losing_a_fact`), and per split the rows whose label follows from facts each stated
    within one unit."""
    report = {}
    for unit in UNITS:
        learnable: set = set()
        losing = []
        for row in checker.data.train:
            in_units = _facts(checker, units_of([row["text"]], unit))
            learnable |= in_units
            if checker.facts_in("", row["text"]) - in_units:
                losing.append(row["id"])
        report[unit] = {
            "documents_losing_a_fact": len(losing),
            "documents": len(checker.data.train),
            "first_losing": losing[:MAX_EXAMPLES],
            "splits": _entailed(checker, frozenset(learnable), checker.data.tests),
        }
    return report


def shortcuts(checker: FamilyChecker) -> list[dict[str, Any]]:
    """Every heuristic on every split: accuracy against chance and the binomial bound."""
    data = checker.data
    train_texts = [row["text"] for row in data.train]
    corpora = {"train": Corpus(train_texts, checker)}
    if set(data.icl_facts) != set(train_texts):
        corpora["icl"] = Corpus(list(data.icl_facts), checker)
    results = []
    for split, rows in data.tests.items():
        if not rows:
            continue
        items = len({checker.item_id(row) for row in rows})
        chance = checker.chance(split, rows)
        bound = binomial_bound(items, chance)
        permitted = checker.permitted.get(split, {})
        runs = [(h, None) for h in fact_blind_heuristics(rows)]
        runs += [(h, name) for name in corpora for h in (*FACT_AWARE_HEURISTICS, *checker.extra_heuristics())]
        for heuristic, corpus_name in runs:
            if not heuristic.fact_aware and corpus_name is not None:
                continue
            score = accuracy(heuristic, rows, corpora.get(corpus_name))
            reason = permitted.get(heuristic.name) or (permitted.get(FACT_AWARE) if heuristic.fact_aware else None)
            status = "ok" if score <= bound + 1e-9 else "permitted" if reason else "FAIL"
            results.append(
                {
                    "split": split,
                    "heuristic": heuristic.name,
                    "fact_aware": heuristic.fact_aware,
                    "corpus": corpus_name,
                    "rows": len(rows),
                    "items": items,
                    "chance": round(chance, 4),
                    "accuracy": round(score, 4),
                    "bound": round(bound, 4),
                    "status": status,
                    "note": reason if status == "permitted" else "",
                }
            )
    return results


def prefix_balance(checker: FamilyChecker) -> dict[str, dict[str, float]]:
    """Per split, over every prefix of the items (first row of each): the largest excess, in items, of
    a label position, an item kind or an answer over its share of the whole split."""
    report = {}
    for split, rows in checker.data.tests.items():
        first_rows = list({checker.item_id(row): row for row in reversed(rows)}.values())[::-1]
        if not first_rows:
            continue
        features = {
            "label": [row["label"] for row in first_rows],
            "kind": [checker.kind(split, row) for row in first_rows],
            "answer": [row["choices"][row["label"]] for row in first_rows],
        }
        report[split] = {name: _max_excess(values) for name, values in features.items()}
    return report


def _max_excess(values: list[Hashable]) -> float:
    total = collections.Counter(values)
    share = {value: count / len(values) for value, count in total.items()}
    seen: collections.Counter = collections.Counter()
    worst = 0.0
    for n, value in enumerate(values, 1):
        seen[value] += 1
        worst = max(worst, max(abs(seen[v] - n * p) for v, p in share.items()))
    return round(worst, 2)


def lexicon(checker: FamilyChecker) -> dict[str, Any] | None:
    """Every nonsense form, checked like the lexicon's base words: not English, not one edit from common English."""
    forms = checker.lexicon_forms()
    if forms is None:
        return None
    from lm_eval_tasks.lexicon import admissible, is_english

    english = sorted(form for form in set(forms) if is_english(form))
    near = sorted(form for form in set(forms) if not admissible(form) and form not in english)
    return {"forms": len(set(forms)), "english": english, "near_english": near}
