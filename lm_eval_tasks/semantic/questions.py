"""Test items: each asks one entailed fact, in every phrasing, with hard distractors.

An item is a fact and a direction: `forward` asks for the value ("If something is a
grud, then it is" -> "rony."), `reverse` for the subject ("Things that are rony
include" -> "gruds."). Every choice is hard: a value (or subject) that bears the asked
relation to a *different* entity of the dataset, and that the reasoner shows to be
clearly false for this item (`Reasoner.clearly_false`).

Counterbalancing (Latin squares): items of one relation are put into groups of
NUM_CHOICES whose answers are pairwise distractors of each other. All items of a group
get the same choices in the same order, and each choice is right for exactly one of
them, at a different position. A model that ignores the facts, i.e. scores choices
by any preference that does not depend on which subject is asked, therefore scores
exactly 1 / NUM_CHOICES on every complete group. Items no group can take (rarer
relations, shared inherited values) get distractors that balance the split as well as
possible: those the split has used least as distractors relative to how often they are
right. The `grouped` field of each row says which mechanism built it.

Rows come group by group, each item's phrasings together, and the groups of the
different relations (and hop counts, and grouped or balanced items) are interleaved in
proportion (`lm_eval_tasks.ordering`): a `--limit` prefix is a fair sample of the split,
and a limit that is a multiple of NUM_CHOICES x phrasings keeps whole groups.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections import Counter

from lm_eval_tasks.ordering import interleave
from lm_eval_tasks.semantic.knowledge import Fact, KnowledgeBase
from lm_eval_tasks.semantic.language import Vocabulary, capitalize
from lm_eval_tasks.semantic.reasoner import Reasoner
from lm_eval_tasks.semantic.templates import TEST_FORWARD, TEST_REVERSE, template_kind

logger = logging.getLogger(__name__)

NUM_CHOICES = 4
SPLITS = ("rephrase", "reversal", "syllogism", "deduction_long", "category_holdout")


@dataclasses.dataclass(frozen=True)
class Item:
    fact: Fact
    direction: str

    @property
    def answer(self) -> str:
        """The concept the item asks for: a value (forward) or a subject (reverse)."""
        return self.fact.value if self.direction == "forward" else self.fact.subject

    def candidate(self, answer: str) -> Fact:
        """The statement a choice would make for this item."""
        if self.direction == "forward":
            return Fact(self.fact.subject, self.fact.relation, answer)
        return Fact(answer, self.fact.relation, self.fact.value)


def compatible(a: Fact, b: Fact, reasoner: Reasoner) -> bool:
    """`a` and `b` can share a group: each one's value is a fair distractor for the other's subject.

    The condition is symmetric in direction: the same groups serve forward and reverse items.
    """
    return (
        a.relation == b.relation
        and a.subject != b.subject
        and a.value != b.value
        and reasoner.clearly_false(Fact(a.subject, a.relation, b.value))
        and reasoner.clearly_false(Fact(b.subject, b.relation, a.value))
    )


def latin_groups(facts: list[Fact], reasoner: Reasoner, rng: random.Random) -> tuple[list[list[Fact]], list[Fact]]:
    """Partition into groups of NUM_CHOICES mutually compatible facts, and the facts left over.

    Groups are found one at a time around the most constrained fact left (fewest
    compatible partners), by a depth-first search for a clique of the compatibility graph
    that prefers the least connected partners, to keep the well connected ones for later.
    """
    order = list(facts)
    rng.shuffle(order)
    # Facts are handled by their index in `order` (hashing dataclasses dominated the run time).
    partners: list[set[int]] = [set() for _ in order]
    for i, a in enumerate(order):
        for j in range(i + 1, len(order)):
            if compatible(a, order[j], reasoner):
                partners[i].add(j)
                partners[j].add(i)
    remaining = set(range(len(order)))
    degree = [len(p) for p in partners]  # partners still remaining

    def remove(i: int) -> None:
        remaining.discard(i)
        for j in partners[i]:
            degree[j] -= 1

    groups: list[list[Fact]] = []
    leftovers: list[Fact] = []
    while remaining:
        seed = min(remaining, key=lambda i: (degree[i], i))
        remove(seed)
        candidates = sorted(partners[seed] & remaining, key=lambda i: (degree[i], i))
        clique = _clique(candidates, NUM_CHOICES - 1, partners)
        if clique is None:
            leftovers.append(order[seed])
            continue
        for member in clique:
            remove(member)
        groups.append([order[i] for i in (seed, *clique)])
    return groups, leftovers


def _clique(candidates: list[int], size: int, partners: list[set[int]]) -> list[int] | None:
    """`size` mutually compatible indices among `candidates` (in their order of preference), or None."""
    if size == 0:
        return []
    for position, first in enumerate(candidates):
        rest = _clique([c for c in candidates[position + 1 :] if c in partners[first]], size - 1, partners)
        if rest is not None:
            return [first, *rest]
    return None


def distractor_pool(kb: KnowledgeBase, reasoner: Reasoner) -> list[Fact]:
    """Entailed facts whose values and subjects may serve as distractors (none about held-out categories)."""
    return [f for f in reasoner.closure if f.subject not in kb.holdouts]


def fair_distractors(item: Item, pool: list[Fact], reasoner: Reasoner) -> list[str]:
    """Answers that bear the item's relation to another entity and are clearly false for the item."""
    answers = {Item(f, item.direction).answer for f in pool if f.relation == item.fact.relation}
    return sorted(a for a in answers if a != item.answer and reasoner.clearly_false(item.candidate(a)))


def unaskable_holdouts(kb: KnowledgeBase, reasoner: Reasoner) -> set[str]:
    """Held-out categories with an inference that has too few fair distractors to be asked."""
    pool = distractor_pool(kb, reasoner)
    return {
        f.subject
        for f in reasoner.closure
        if f.subject in kb.holdouts
        and f not in reasoner.trained
        and len(fair_distractors(Item(f, "forward"), pool, reasoner)) < NUM_CHOICES - 1
    }


def build_splits(
    kb: KnowledgeBase, reasoner: Reasoner, vocab: Vocabulary, rng: random.Random
) -> tuple[dict[str, list[dict]], dict[str, list[tuple[str, ...]]]]:
    """Every test split's rows, and for each row the trained facts its answer follows from.

    Splits test a counterbalanced sample: the facts that fit into a Latin-square group.
    Only category_holdout, which must test every inference, keeps the rest too.
    rephrase and reversal ask the same trained facts, in the same groups. A row's needs
    are the premises of a shortest derivation of its fact (the fact itself if trained).
    """
    holdouts = set(kb.holdouts)
    trained = [f for f in kb.facts if f.subject not in holdouts]
    inferred = [f for f in reasoner.closure if f not in reasoner.trained]
    pool = distractor_pool(kb, reasoner)
    builders = {split: SplitBuilder(split, kb, reasoner, vocab, pool, rng) for split in SPLITS}
    groups, leftovers = latin_groups(trained, reasoner, rng)
    for split, direction in (("rephrase", "forward"), ("reversal", "reverse")):
        builders[split].add_groups(groups, direction)
        builders[split].dropped += len(leftovers)
    inference_splits = {
        "syllogism": [f for f in inferred if f.subject not in holdouts and reasoner.hops(f) == 1],
        "deduction_long": [f for f in inferred if f.subject not in holdouts and reasoner.hops(f) >= 2],
        "category_holdout": [f for f in inferred if f.subject in holdouts],
    }
    for split, facts in inference_splits.items():
        groups, leftovers = latin_groups(facts, reasoner, rng)
        builders[split].add_groups(groups, "forward")
        if split == "category_holdout":
            builders[split].add_balanced(leftovers, "forward")
        else:
            builders[split].dropped += len(leftovers)
    rows, needs = {}, {}
    for split, builder in builders.items():
        rows[split], needs[split] = builder.finish()
        logger.info("split %s: %d rows; %d candidate items left out", split, len(rows[split]), builder.dropped)
    return rows, needs


@dataclasses.dataclass
class SplitBuilder:
    """Builds one test split's rows; `pool` holds every entailed fact that may lend a distractor.

    Items are collected in units (a Latin-square group, or one balanced item), which
    `finish` orders and numbers."""

    split: str
    kb: KnowledgeBase
    reasoner: Reasoner
    vocab: Vocabulary
    pool: list[Fact]
    rng: random.Random
    dropped: int = 0
    _units: list[tuple[tuple, list[tuple[Item, list[str]]]]] = dataclasses.field(default_factory=list)
    _right: Counter = dataclasses.field(default_factory=Counter)
    _wrong: Counter = dataclasses.field(default_factory=Counter)

    def add_groups(self, groups: list[list[Fact]], direction: str) -> None:
        for group in groups:
            items = [Item(f, direction) for f in group]
            order = [item.answer for item in items]
            self.rng.shuffle(order)
            self.rng.shuffle(items)  # so that labels do not follow the items' order within the group
            fact = group[0]
            self._units.append(
                ((template_kind(fact.relation), self.reasoner.hops(fact), True), [(item, order) for item in items])
            )
            for item in items:
                self._count(item, order)

    def add_balanced(self, facts: list[Fact], direction: str) -> None:
        """Items outside any group: the least-used fair distractors of the same relation."""
        for fact in facts:
            item = Item(fact, direction)
            fair = fair_distractors(item, self.pool, self.reasoner)
            if len(fair) < NUM_CHOICES - 1:
                self.dropped += 1
                logger.debug("%s: too few fair distractors for %s (%s); item dropped", self.split, fact, direction)
                continue
            self.rng.shuffle(fair)
            fair.sort(key=lambda a: self._wrong[a] - (NUM_CHOICES - 1) * self._right[a])
            order = [item.answer, *fair[: NUM_CHOICES - 1]]
            self.rng.shuffle(order)
            self._units.append(((template_kind(fact.relation), self.reasoner.hops(fact), False), [(item, order)]))
            self._count(item, order)

    def _count(self, item: Item, order: list[str]) -> None:
        self._right[item.answer] += 1
        for a in order:
            if a != item.answer:
                self._wrong[a] += 1

    def finish(self) -> tuple[list[dict], list[tuple[str, ...]]]:
        """The rows in their final order (units interleaved by kind), numbered, and each row's needs."""
        rows: list[dict] = []
        needs: list[tuple[str, ...]] = []
        number = 0
        positions: Counter = Counter()  # how often each choice position holds an ungrouped item's answer
        for _, members in interleave(self._units, lambda unit: unit[0], self.rng):
            for item, order in members:
                if len(members) == 1:  # outside a Latin square: the answer goes where answers have been least
                    least = min(positions[i] for i in range(NUM_CHOICES))
                    target = self.rng.choice([i for i in range(NUM_CHOICES) if positions[i] == least])
                    order = [a for a in order if a != item.answer]
                    order.insert(target, item.answer)
                    positions[target] += 1
                item_rows = self._rows(item, order, f"semantic-{self.split}-{number:04d}", members)
                number += 1
                rows += item_rows
                premises = tuple(sorted({str(f) for f in self.reasoner.proof(item.fact)}))
                needs += [premises] * len(item_rows)
        return rows, needs

    def _rows(self, item: Item, order: list[str], item_id: str, unit: list) -> list[dict]:
        fact = item.fact
        kind = template_kind(fact.relation)
        templates = TEST_FORWARD[kind] if item.direction == "forward" else TEST_REVERSE[kind]
        return [
            {
                "id": f"{item_id}-p{phrasing}",
                "source_id": self.kb.source_id(fact.subject),
                "item_id": item_id,
                "query": capitalize(query.format(**self.vocab.slots(fact))),
                "choices": [answer.format(**self.vocab.slots(item.candidate(a))) for a in order],
                "label": order.index(item.answer),
                "relation": kind,
                "direction": item.direction,
                "hops": self.reasoner.hops(fact),
                "phrasing": phrasing,
                "grouped": len(unit) > 1,
                "gloss": self.gloss(fact),
            }
            for phrasing, (query, answer) in enumerate(templates)
        ]

    def gloss(self, fact: Fact) -> str:
        """The item's true statement in English: debugging output only, never in a prompt."""
        subject = self.kb.skeleton.plural(fact.subject)
        value = self.kb.skeleton.plural(fact.value) if fact.value_is_category else fact.value
        relation = {"isa": "are", "is": "are", "has": "have", "can": "can"}.get(fact.relation, fact.relation)
        return f"{subject} {relation} {value}"
