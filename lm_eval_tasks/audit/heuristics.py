"""Shortcut baselines: strategies that answer without the tested inference, and their accuracy.

Each heuristic scores every choice of a test row; the highest score is its answer, and a
tie counts as a uniform guess among the tied choices (so its accuracy is the expected one).

Fact-blind heuristics see only the test rows: a fixed choice position, the longest or
shortest choice, the choice's leading word (a quantifier, say), how often a choice occurs
across the split. Fact-aware ones also see a corpus (the training documents, or the ICL
context) through the family's content words (`FamilyChecker.words`):

- frequency: how often the choice's words occur in the corpus;
- co-occurrence: in how many documents (or sentences) a choice word occurs with a word of
  the question; order-aware: ... before / after a word of the question;
- n-gram: the log-likelihood of the choice after the question under a bigram model of the
  corpus (add-one smoothing over the corpus vocabulary);
- copying: the most word bigrams of the choice found in one document that names a word
  of the question.

A choice's words are its content words minus those every choice of the row shares, so the
heuristics look at what tells the choices apart.
"""

from __future__ import annotations

import collections
import itertools
import math
import re
from typing import Any

from lm_eval_tasks.audit.checker import FamilyChecker, Heuristic, tokens

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Corpus:
    """A text collection indexed for the fact-aware heuristics."""

    def __init__(self, texts: list[str], checker: FamilyChecker):
        self.checker = checker
        self.texts = texts
        self.documents = [checker.words(text) for text in texts]
        self.in_documents = _index(self.documents)
        self.in_sentences = _index([checker.words(s) for text in texts for s in SENTENCE_END.split(text)])
        self.frequency = collections.Counter(word for document in self.documents for word in document)
        self.token_documents = [tokens(text) for text in texts]
        self.bigrams = collections.Counter(pair for t in self.token_documents for pair in itertools.pairwise(t))
        self.unigrams = collections.Counter(token for t in self.token_documents for token in t)
        self.vocabulary = len(self.unigrams) + 1
        self._words: dict[str, list[str]] = {}

    def words(self, text: str) -> list[str]:
        if text not in self._words:
            self._words[text] = self.checker.words(text)
        return self._words[text]

    def distinguishing(self, row: dict[str, Any]) -> list[set[str]]:
        """Each choice's content words minus those every choice shares."""
        choices = [set(self.words(choice)) for choice in row["choices"]]
        shared = set.intersection(*choices) if choices else set()
        return [words - shared for words in choices]


def _index(documents: list[list[str]]) -> dict[str, set[int]]:
    index: dict[str, set[int]] = collections.defaultdict(set)
    for number, words in enumerate(documents):
        for word in words:
            index[word].add(number)
    return index


def expected_accuracy(scores: list[float], label: int) -> float:
    best = max(scores)
    winners = [i for i, s in enumerate(scores) if s == best]
    return 1 / len(winners) if label in winners else 0.0


# -- fact-blind ------------------------------------------------------------------------------


def _split_counts(rows: list[dict[str, Any]]) -> collections.Counter:
    return collections.Counter(choice for row in rows for choice in row["choices"])


def fact_blind_heuristics(rows: list[dict[str, Any]]) -> list[Heuristic]:
    counts = _split_counts(rows)
    positions = max(len(row["choices"]) for row in rows)
    leading = sorted({choice.split()[0] for row in rows for choice in row["choices"] if choice.split()})
    heuristics = [
        Heuristic(
            f"always choice {k + 1}", False, lambda row, _, k=k: [float(i == k) for i in range(len(row["choices"]))]
        )
        for k in range(positions)
    ]
    heuristics += [
        Heuristic("longest choice", False, lambda row, _: [len(c) for c in row["choices"]]),
        Heuristic("shortest choice", False, lambda row, _: [-len(c) for c in row["choices"]]),
        Heuristic("most frequent choice in the split", False, lambda row, _: [counts[c] for c in row["choices"]]),
        Heuristic("least frequent choice in the split", False, lambda row, _: [-counts[c] for c in row["choices"]]),
    ]
    if 1 < len(leading) <= 8:  # a few distinct leading words: quantifiers, articles
        heuristics += [
            Heuristic(
                f"leading word {word!r}",
                False,
                lambda row, _, w=word: [float(c.split()[:1] == [w]) for c in row["choices"]],
            )
            for word in leading
        ]
    return heuristics


# -- fact-aware -------------------------------------------------------------------------------


def _frequency(row, corpus: Corpus, sign: int) -> list[float]:
    return [sign * sum(corpus.frequency[w] for w in words) for words in corpus.distinguishing(row)]


def _cooccurrence(row, corpus: Corpus, index_name: str) -> list[float]:
    index = getattr(corpus, index_name)
    asked = set().union(*(index.get(w, set()) for w in corpus.words(row["query"])))
    return [len(asked & set().union(*(index.get(w, set()) for w in words))) for words in corpus.distinguishing(row)]


def _order(row, corpus: Corpus, after: bool) -> list[float]:
    """Documents where a choice word occurs after (or before) a word of the question."""
    asked = set(corpus.words(row["query"]))
    scores = []
    for words in corpus.distinguishing(row):
        count = 0
        candidates = set().union(*(corpus.in_documents.get(w, set()) for w in words)) if words else set()
        for number in candidates:
            document = corpus.documents[number]
            query_at = [i for i, w in enumerate(document) if w in asked]
            choice_at = [i for i, w in enumerate(document) if w in words]
            if query_at and choice_at:
                count += (max(choice_at) > min(query_at)) if after else (min(choice_at) < max(query_at))
        scores.append(count)
    return scores


def _bigram(row, corpus: Corpus) -> list[float]:
    query = tokens(row["query"])
    scores = []
    for choice in row["choices"]:
        sequence = query + tokens(choice)
        total = 0.0
        for previous, token in zip(sequence[len(query) - 1 :], sequence[len(query) :]):
            total += math.log((corpus.bigrams[previous, token] + 1) / (corpus.unigrams[previous] + corpus.vocabulary))
        scores.append(total)
    return scores


def _copying(row, corpus: Corpus) -> list[float]:
    asked = set(corpus.words(row["query"]))
    documents = set().union(*(corpus.in_documents.get(w, set()) for w in asked))
    pairs = [set(itertools.pairwise(tokens(choice))) for choice in row["choices"]]
    best = [0] * len(pairs)
    for number in documents:
        present = set(itertools.pairwise(corpus.token_documents[number]))
        best = [max(b, len(p & present)) for b, p in zip(best, pairs)]
    return best


FACT_AWARE_HEURISTICS = (
    Heuristic("frequent choice words", True, lambda row, corpus: _frequency(row, corpus, 1)),
    Heuristic("rare choice words", True, lambda row, corpus: _frequency(row, corpus, -1)),
    Heuristic("document co-occurrence", True, lambda row, corpus: _cooccurrence(row, corpus, "in_documents")),
    Heuristic("sentence co-occurrence", True, lambda row, corpus: _cooccurrence(row, corpus, "in_sentences")),
    Heuristic("choice after the question's words", True, lambda row, corpus: _order(row, corpus, after=True)),
    Heuristic("choice before the question's words", True, lambda row, corpus: _order(row, corpus, after=False)),
    Heuristic("bigram model", True, _bigram),
    Heuristic("copying from a document", True, _copying),
)


def accuracy(heuristic: Heuristic, rows: list[dict[str, Any]], corpus: Corpus | None) -> float:
    return sum(expected_accuracy(heuristic.score(row, corpus), row["label"]) for row in rows) / len(rows)
