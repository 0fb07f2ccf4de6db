"""The reversal_curse family's audit plug-in: name-description pairs read back from the text.

A fact is a (name, description) pair stated within one text. Names are the tested people's
names (the choices of the `reverse` split). A description is identified by its quoted
title in generated data (every title is unique), and, in Berglund et al.'s original files,
by the words only one person's training sentences use (`matching.py`).
"""

from __future__ import annotations

import re
from typing import ClassVar

from lm_eval_tasks.audit.checker import FACT_AWARE, FamilyChecker, tokens
from lm_eval_tasks.reversal_curse.generator import D2P_TEST, D2P_TRAIN, P2D_TEST, P2D_TRAIN
from lm_eval_tasks.reversal_curse.matching import STOPWORDS, DescriptionMatcher

TITLE = re.compile(r'"([^"]+)"')
ASSOCIATION = (
    "asks a trained name-description pair; the choice that shares documents with the question's words is the "
    "pair itself, which a reader can use in either direction (the paper's design: the choices are names or "
    "descriptions of the dataset)"
)


def _template_words() -> frozenset[str]:
    texts = [*P2D_TRAIN, *D2P_TRAIN, *(q for q, _ in P2D_TEST), *D2P_TEST]
    return frozenset(t for text in texts for t in tokens(re.sub(r"\{\w+\}", " ", text)) if t.isalpha())


class ReversalCurseChecker(FamilyChecker):
    paper_sizes: ClassVar[dict[str, str]] = {
        "people": "90 in Berglund et al. (30 p2d, 30 d2p, 30 both); Lampinen et al. reuse them",
        "training documents": "3,600 (30 paraphrases per person and direction)",
        "reverse items": "300 (30 p2d people x 10 held-out paraphrases)",
        "forward items": "300",
    }
    permitted: ClassVar[dict[str, dict[str, str]]] = {
        "forward": {FACT_AWARE: "forward " + ASSOCIATION},
        "reverse": {FACT_AWARE: "reverse " + ASSOCIATION},
    }

    def __init__(self, data):
        super().__init__(data)
        self.original = bool(data.options.get("source_dir"))
        self.names = sorted({c.rstrip(".") for row in data.tests["reverse"] for c in row["choices"]}, key=len)[::-1]
        self.template_words = STOPWORDS if self.original else _template_words()
        if self.original:
            about = {name: [row["text"] for row in data.train if name in row["text"]] for name in self.names}
            self.matcher = DescriptionMatcher(about)

    def description(self, text: str) -> str | None:
        """Which description `text` gives: its title (generated data) or its person (original data)."""
        if not self.original:
            titles = TITLE.findall(text)
            return titles[0] if titles else None
        return self.matcher.person_of(self._without_names(text))

    def _without_names(self, text: str) -> str:
        for name in self.names:
            text = text.replace(name, " ")
        return text

    def facts_in(self, context: str, target: str) -> frozenset:
        described = self.description(target)
        if described is None:
            return frozenset()
        both = f"{context} {target}"
        return frozenset((name, described) for name in self.names if name in both)

    def supported(self, facts: frozenset, split: str, row: dict) -> list[int]:
        if split == "reverse":
            described = self.description(row["query"])
            return [i for i, c in enumerate(row["choices"]) if (c.rstrip("."), described) in facts]
        name = next(name for name in self.names if name in row["query"])
        return [i for i, c in enumerate(row["choices"]) if (name, self.description(c)) in facts]

    def sizes(self) -> dict[str, int]:
        people = {row["source_id"] for row in self.data.train}
        return {"people": len(people), **super().sizes()}


def checker(data) -> ReversalCurseChecker:
    return ReversalCurseChecker(data)
