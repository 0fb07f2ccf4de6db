"""Whose description does a text give? Matching by the words only one person's descriptions use.

Each person's descriptions are collected from training text about them (e.g. the p2d
completions of Berglund et al.'s files, or the sentences that name them). A word is
distinctive for a person when no other person's descriptions use it ("Abyssal",
"Melodies", "underwater"); a text gives the description of the person whose distinctive
words it holds the most of, if that person is unique. Paraphrases ("directing the ..." vs
"the director of the ...") keep enough distinctive words to match.
"""

from __future__ import annotations

import collections
import re

# Words too common to tell descriptions apart, whatever the dataset.
STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "who",
        "was",
        "with",
        "that",
        "this",
        "from",
        "has",
        "have",
        "had",
        "his",
        "her",
        "their",
        "they",
        "them",
        "known",
        "being",
        "been",
        "are",
        "were",
        "its",
        "into",
        "onto",
        "also",
        "only",
        "ever",
        "first",
        "one",
        "most",
        "well",
        "famous",
        "renowned",
        "acclaimed",
        "person",
        "someone",
    ]
)


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 3 and w not in STOPWORDS}


class DescriptionMatcher:
    def __init__(self, descriptions: dict[str, list[str]]):
        """`descriptions`: person -> texts that describe them (their own name parts are ignored)."""
        words = {
            person: set().union(*map(content_words, texts)) - content_words(person)
            for person, texts in descriptions.items()
        }
        users = collections.Counter(word for vocabulary in words.values() for word in vocabulary)
        self.distinctive = {person: {w for w in vocabulary if users[w] == 1} for person, vocabulary in words.items()}

    def person_of(self, text: str) -> str | None:
        """The person whose description `text` gives, or None when no person (or more than one) matches best."""
        found = content_words(text)
        overlap = {person: len(found & words) for person, words in self.distinctive.items()}
        best = max(overlap.values(), default=0)
        winners = [person for person, count in overlap.items() if count == best]
        return winners[0] if best > 0 and len(winners) == 1 else None
