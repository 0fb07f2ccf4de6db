"""Forward chaining over trained facts: the single source of truth for what is entailed.

One rule, applied to a fixpoint:

    (x isa y) and (y r v)  =>  (x r v)        for every relation r, isa included

so membership is transitive and every property and relation is inherited by the
subject's descendants (never by the object's: "felines hunt mice" says nothing about
field mice). A derived fact's `hops` is the number of rule applications in its shortest
derivation: "robins are songbirds; songbirds are birds; birds have wings" gives
"robins have wings" in 2 hops; a trained fact has 0.

Derivations are found cheapest-first (Knuth's generalization of Dijkstra: a conclusion
costs the sum of its premises' costs), so the first derivation of a fact is a shortest one.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable

from lm_eval_tasks.semantic.knowledge import ISA, PROPERTY_RELATIONS, Fact


class Reasoner:
    def __init__(self, facts: Iterable[Fact]):
        self.trained = frozenset(facts)
        self._premises_count: dict[Fact, int] = {}
        self._derivation: dict[Fact, tuple[Fact, Fact] | None] = {}
        by_subject: dict[str, list[Fact]] = {}  # settled facts, indexed for the rule's two premises
        isa_into: dict[str, list[Fact]] = {}
        # (cost, fact, push number, derivation): the push number keeps ties deterministic.
        queue: list[tuple[int, Fact, int, tuple[Fact, Fact] | None]] = [(1, f, 0, None) for f in sorted(self.trained)]
        heapq.heapify(queue)
        self._pushes = 0
        while queue:
            cost, fact, _, derivation = heapq.heappop(queue)
            if fact in self._premises_count:
                continue
            self._premises_count[fact] = cost
            self._derivation[fact] = derivation
            by_subject.setdefault(fact.subject, []).append(fact)
            if fact.relation == ISA:
                isa_into.setdefault(fact.value, []).append(fact)
                for second in by_subject.get(fact.value, []):  # fact is (x isa y), second is (y r v)
                    self._push(queue, cost + self._premises_count[second], fact, second)
            for first in isa_into.get(fact.subject, []):  # first is (x isa y), fact is (y r v)
                if first is not fact:
                    self._push(queue, self._premises_count[first] + cost, first, fact)

    def _push(self, queue: list, cost: int, isa_fact: Fact, second: Fact) -> None:
        conclusion = Fact(isa_fact.subject, second.relation, second.value)
        if conclusion.subject != conclusion.value and conclusion not in self._premises_count:
            self._pushes += 1
            heapq.heappush(queue, (cost, conclusion, self._pushes, (isa_fact, second)))

    # -- what follows -------------------------------------------------------------------

    def entails(self, fact: Fact) -> bool:
        return fact in self._premises_count

    def hops(self, fact: Fact) -> int:
        """Rule applications in the shortest derivation (0 for a trained fact)."""
        if fact not in self._premises_count:
            raise KeyError(f"not entailed: {fact}")
        return self._premises_count[fact] - 1

    def proof(self, fact: Fact) -> list[Fact]:
        """The trained premises of a shortest derivation, in chain order."""
        derivation = self._derivation[fact]
        return [fact] if derivation is None else self.proof(derivation[0]) + self.proof(derivation[1])

    @functools.cached_property
    def closure(self) -> tuple[Fact, ...]:
        return tuple(sorted(self._premises_count))

    @functools.cached_property
    def _closure_by_subject(self) -> dict[str, list[Fact]]:
        index: dict[str, list[Fact]] = {}
        for fact in self.closure:
            index.setdefault(fact.subject, []).append(fact)
        return index

    def facts_about(self, subject: str) -> list[Fact]:
        return list(self._closure_by_subject.get(subject, []))

    def ancestors(self, category: str) -> frozenset[str]:
        return frozenset(f.value for f in self.facts_about(category) if f.relation == ISA)

    @functools.cached_property
    def _descendants(self) -> dict[str, frozenset[str]]:
        index: dict[str, set[str]] = {}
        for fact in self.closure:
            if fact.relation == ISA:
                index.setdefault(fact.value, set()).add(fact.subject)
        return {category: frozenset(members) for category, members in index.items()}

    def descendants(self, category: str) -> frozenset[str]:
        return self._descendants.get(category, frozenset())

    # -- what is clearly false ----------------------------------------------------------

    @functools.cache  # noqa: B019 -- one reasoner per generated instance
    def excluded_values(self, subject: str, relation: str) -> frozenset[str]:
        """Values v for which (subject relation v) is entailed or undetermined: never a distractor.

        Undetermined means some kind of `subject` (a descendant) has it ("mammals are
        striped" when tigers are), or, for isa, `v` is a kind of `subject`, or, for a verb,
        the subject's kinds bear it to an ancestor or a kind of `v` ("cats hunt rodents"
        when cats hunt mice): generics a careful reader could accept.
        """
        if relation == ISA:
            return self.ancestors(subject) | self.descendants(subject) | {subject}
        members = {subject} | self.descendants(subject)
        values = {f.value for m in members for f in self.facts_about(m) if f.relation == relation}
        if relation in PROPERTY_RELATIONS:
            return frozenset(values)
        return frozenset(values).union(*(self.ancestors(v) | self.descendants(v) for v in values))

    def clearly_false(self, fact: Fact) -> bool:
        """Neither entailed nor undetermined (see `excluded_values`): a fair distractor."""
        return fact.value not in self.excluded_values(fact.subject, fact.relation)
