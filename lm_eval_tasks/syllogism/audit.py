"""The syllogism family's audit plug-in: premises parsed from the text, entailment by brute force over set models.

Terms denote arbitrary, possibly empty, sets. n terms split the universe into 2**n - 1
Venn regions (plus the outside); a model is the set of inhabited regions, so the
2**(2**n - 1) models (32,768 for an item's four terms) cover every interpretation. A
candidate follows from premises when it holds in every model of the premises. The checker
reads only the text (never the generator's logical forms).
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import ClassVar

from lm_eval_tasks.audit.checker import FamilyChecker, Heuristic

STATEMENT = re.compile(r"(All|Some but not all|No) (\w+) are (\w+)\.|(\w+) include (all|some but not all|no) (\w+)\.")
QUERY = re.compile(r"^The relationships between (\w+) and (\w+) are:$")
QUANTIFIER = {"All": "all", "Some but not all": "some", "No": "no"}


def statements(text: str) -> list[tuple[str, str, str]]:
    """Every (quantifier, subject, predicate) statement in `text`, in order ("Y include all X" is (all, X, Y))."""
    found = []
    for q, s, p, p2, q2, s2 in STATEMENT.findall(text):
        found.append((QUANTIFIER[q], s, p) if q else (QUANTIFIER[q2[:1].upper() + q2[1:]], s2, p2))
    return found


def surface_statements(text: str) -> list[tuple[str, str, str]]:
    """What a copier sees: (quantifier word, first term, second term) of each "Q X are Y" sentence.

    It does not know that "Y include all X" means "All X are Y": it reads (all, Y, X)."""
    found = []
    for q, s, p, p2, q2, s2 in STATEMENT.findall(text):
        found.append((QUANTIFIER[q], s, p) if q else (QUANTIFIER[q2[:1].upper() + q2[1:]], p2, s2))
    return found


@functools.cache
def _models(n: int):
    """(models as region bitmasks, region masks per term): every interpretation of n terms."""
    import numpy as np

    regions = [r for r in itertools.product((False, True), repeat=n) if any(r)]
    term_regions = [sum(1 << i for i, r in enumerate(regions) if r[k]) for k in range(n)]
    return np.arange(1 << len(regions), dtype=np.int64), term_regions


def _holds(statement: tuple[str, str, str], models, masks: dict[str, int]):
    quantifier, x, y = statement
    outside = models & (masks[x] & ~masks[y])  # inhabited regions of x outside y
    inside = models & (masks[x] & masks[y])
    if quantifier == "all":
        return outside == 0
    if quantifier == "no":
        return inside == 0
    return (inside != 0) & (outside != 0)


def entailed(premises: list[tuple[str, str, str]], candidates: list[tuple[str, str, str]]) -> list[bool]:
    """For each candidate: does it hold in every model of `premises` (over the terms they all name)?"""
    terms = sorted({t for _, s, p in [*premises, *candidates] for t in (s, p)})
    models, term_regions = _models(len(terms))
    masks = dict(zip(terms, term_regions))
    possible = models >= 0
    for premise in premises:
        possible &= _holds(premise, models, masks)
    if not possible.any():
        return [False] * len(candidates)  # inconsistent premises: nothing is a fair answer
    return [bool(_holds(candidate, models, masks)[possible].all()) for candidate in candidates]


def _connected(facts, x: str, y: str) -> list[tuple[str, str, str]]:
    """The statements of `facts` linked to the asked terms (an item's terms occur in no other item)."""
    reached, linked, grown = {x, y}, [], True
    while grown:
        grown = False
        for fact in facts:
            if fact not in linked and {fact[1], fact[2]} & reached:
                linked.append(fact)
                reached |= {fact[1], fact[2]}
                grown = True
    return linked


# -- copying heuristics: the items' own premises, read without logic --------------------------


def _premises_of(row, corpus) -> list[tuple[str, str, str]]:
    x, y = QUERY.match(row["query"]).groups()
    numbers = corpus.in_documents.get(x.lower(), set()) & corpus.in_documents.get(y.lower(), set())
    return [s for n in sorted(numbers) for s in surface_statements(corpus.texts[n])]


def _candidates(row) -> list[tuple[str, str, str]]:
    return [statements(choice)[0] for choice in row["choices"]]


def _copy_quantifier(row, corpus) -> list[float]:
    """ "Some but not all" if a premise says it, else "All"; any direction."""
    quantifier = "some" if any(q == "some" for q, _, _ in _premises_of(row, corpus)) else "all"
    return [float(q == quantifier) for q, _, _ in _candidates(row)]


def _copy_subject(row, corpus) -> list[float]:
    """An All or Some-conclusion whose subject is an asked term that some premise has as its subject."""
    subjects = {s for _, s, _ in _premises_of(row, corpus)}
    return [float(q != "no" and s in subjects) for q, s, _ in _candidates(row)]


def _copy_predicate(row, corpus) -> list[float]:
    """An All or Some-conclusion whose predicate is an asked term that some premise has as its predicate."""
    predicates = {p for _, _, p in _premises_of(row, corpus)}
    return [float(q != "no" and p in predicates) for q, _, p in _candidates(row)]


def _copy_quantifier_and_subject(row, corpus) -> list[float]:
    """Votes: every premise whose subject is an asked term proposes its quantifier with that subject."""
    votes = [(q, s) for q, s, _ in _premises_of(row, corpus)]
    return [float(votes.count((q, s))) for q, s, _ in _candidates(row)]


def _copy_quantifier_and_roles(row, corpus) -> list[float]:
    """Votes for the subject and for the predicate: premises with the candidate's quantifier and term in that role."""
    premises = _premises_of(row, corpus)
    return [
        float(sum(pq == q and ps == s for pq, ps, _ in premises) + sum(pq == q and pp == p for pq, _, pp in premises))
        for q, s, p in _candidates(row)
    ]


COPYING = [
    Heuristic("copy the premises' quantifier", True, _copy_quantifier),
    Heuristic("copy a premise's subject", True, _copy_subject),
    Heuristic("copy a premise's predicate", True, _copy_predicate),
    Heuristic("copy a premise's quantifier and subject", True, _copy_quantifier_and_subject),
    Heuristic("copy premises' quantifier, subject and predicate", True, _copy_quantifier_and_roles),
]


class SyllogismChecker(FamilyChecker):
    paper_sizes: ClassVar[dict[str, str]] = {
        "training documents": "about 69 (one per item)",
        "terms per item": "3",
        "premises per item": "2",
        "deduction items": "about 69 (one per item, 6 candidates)",
    }
    template_words = frozenset(
        {"the", "relationships", "between", "and", "are", "all", "some", "but", "not", "no", "include"}
    )

    def facts_in(self, context: str, target: str) -> frozenset:
        return frozenset(statements(target))

    def supported(self, facts: frozenset, split: str, row: dict) -> list[int]:
        x, y = QUERY.match(row["query"]).groups()
        premises = _connected(sorted(facts), x, y)
        return [i for i, ok in enumerate(entailed(premises, _candidates(row))) if ok]

    def kind(self, split: str, row: dict):
        return row["mood"]

    def chance(self, split: str, rows: list[dict]) -> float:
        """1/4, not 1/6: "No" is never the answer (a valid No-conclusion would be true both ways round), so a
        fact-blind strategy that never picks it guesses among four; the copying heuristics never pick it."""
        return 0.25

    def extra_heuristics(self) -> list[Heuristic]:
        return COPYING

    def lexicon_forms(self) -> list[str]:
        return [w for row in self.data.train for w in self.words(row["text"])]

    def sizes(self) -> dict[str, int]:
        first = self.data.train[0]["text"]
        return {
            "training documents": len(self.data.train),
            "terms per item": len(self.words(first.split(":")[0])),
            "premises per item": len(statements(first)),
            "deduction items": len(self.data.tests["deduction"]),
        }


def checker(data) -> SyllogismChecker:
    return SyllogismChecker(data)
