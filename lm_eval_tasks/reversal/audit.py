"""The reversal family's audit plug-in: a checker that reads comparisons back from the text."""

from __future__ import annotations

import re
from typing import ClassVar

from lm_eval_tasks.audit.checker import FACT_AWARE, FamilyChecker, tokens
from lm_eval_tasks.reversal.generator import FEATURES, PREAMBLES

ANTONYM = {a: b for pair in FEATURES for a, b in (pair, pair[::-1])}
COMPARISON = re.compile(
    r"\b([a-z]+) are (" + "|".join(sorted(map(re.escape, ANTONYM), key=len, reverse=True)) + r") than ([a-z]+)\b"
)
QUERY = re.compile(r"^([a-z]+) are$")


class ReversalChecker(FamilyChecker):
    paper_sizes: ClassVar[dict[str, str]] = {
        "facts": "100",
        "features": "28",
        "training documents": "about 1,000 (each fact in 10 preambles)",
        "forward items": "- (the paper tests reversals)",
        "reverse items": "100 (one per fact)",
    }
    template_words = frozenset(t for p in PREAMBLES for t in tokens(p.replace("{fact}", "")) if t.isalpha()) | {
        "are",
        "than",
    }
    permitted: ClassVar[dict[str, dict[str, str]]] = {
        "forward": {
            FACT_AWARE: "forward re-asks the trained sentence; the choice that matches its words is the fact itself"
        },
    }

    def facts_in(self, context: str, target: str) -> frozenset:
        return frozenset(COMPARISON.findall(target))

    def supported(self, facts: frozenset, split: str, row: dict) -> list[int]:
        subject = QUERY.match(row["query"]).group(1)
        supported = []
        for index, choice in enumerate(row["choices"]):
            (comparison,) = COMPARISON.findall(f"{subject} are {choice}")
            _, comparative, obj = comparison
            if comparison in facts or (obj, ANTONYM[comparative], subject) in facts:
                supported.append(index)
        return supported

    def kind(self, split: str, row: dict):
        return row["feature"]

    def sizes(self) -> dict[str, int]:
        return {
            "facts": len(self.data.icl_facts),
            "features": len({row["feature"] for row in self.data.tests["forward"]}),
            **super().sizes(),
        }

    def lexicon_forms(self) -> list[str]:
        comparative_words = {word for comparative in ANTONYM for word in comparative.split()}
        texts = [row["text"] for row in self.data.train] + [
            row["query"] for rows in self.data.tests.values() for row in rows
        ]
        return [w for text in texts for w in self.words(text) if w not in comparative_words]


def checker(data) -> ReversalChecker:
    return ReversalChecker(data)
