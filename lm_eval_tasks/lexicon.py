"""Pronounceable nonsense words that no English speaker (or pretrained model) has seen.

Every dataset in this package names its entities with these words so that pretraining
knowledge cannot answer a test question: only the training facts can.

Words are built from simple English phonotactics (onset + vowel + coda, or two open
syllables), kept at 4-5 letters, and rejected when `wordfreq` knows them as English
(zipf frequency > 0) or when one edit turns them into a common English word ("slidy",
"grogy" would lend their meaning to an entity). A dataset draws its words with `sample_words`, which also keeps
every pair of drawn words at edit distance >= 2 so that one typo never turns an entity
into another. A dataset that inflects its words (plurals "negu" -> "negus", participles)
passes `forms`: every inflected form must pass the same English checks ("negus", "rubus",
"krokus" are English words) and keep the same distance from every other drawn form.

    >>> import random
    >>> sample_words(3, random.Random(0))  # doctest: +SKIP
    ['skeld', 'vung', 'prib']
"""

from __future__ import annotations

import functools
import itertools
import random
import string
from collections.abc import Callable, Iterable

SINGLE_ONSETS = ("b", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z")
CLUSTER_ONSETS = (
    "bl",
    "br",
    "dr",
    "fl",
    "fr",
    "gl",
    "gr",
    "kl",
    "kr",
    "pl",
    "pr",
    "sk",
    "sl",
    "sm",
    "sn",
    "sp",
    "st",
    "sw",
    "tr",
    "tw",
)
VOWELS = ("a", "e", "i", "o", "u")
SINGLE_CODAS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "t", "x", "z")
CLUSTER_CODAS = (
    "ff",
    "ll",
    "mp",
    "nd",
    "nk",
    "nt",
    "sk",
    "sp",
    "st",
    "lt",
    "lk",
    "rb",
    "rd",
    "rk",
    "rm",
    "rn",
    "rp",
    "rt",
    "ft",
    "pt",
)
# Second syllable of two-syllable words ("dalo", "grepi"): a consonant and a final vowel.
# No final "y": "-y" words read as English adjectives.
OPEN_SYLLABLE_VOWELS = ("a", "i", "o", "u")

MIN_LENGTH, MAX_LENGTH = 4, 5
# A candidate one edit away from any of these most frequent English words is rejected.
COMMON_ENGLISH_VOCABULARY_SIZE = 5000


def _phonotactic_words() -> Iterable[str]:
    onsets = SINGLE_ONSETS + CLUSTER_ONSETS
    codas = SINGLE_CODAS + CLUSTER_CODAS
    for onset, vowel, coda in itertools.product(onsets, VOWELS, codas):
        yield onset + vowel + coda  # "femp", "glon", "troff"
    for onset, vowel, middle, final in itertools.product(onsets, VOWELS, SINGLE_ONSETS, OPEN_SYLLABLE_VOWELS):
        yield onset + vowel + middle + final  # "dalo", "grepi"


def is_english(word: str) -> bool:
    """True when `wordfreq` has ever seen `word` in English text."""
    from wordfreq import zipf_frequency  # imported lazily: loading its tables costs ~0.2 s

    return zipf_frequency(word, "en") > 0


def _one_edit_variants(word: str) -> Iterable[str]:
    letters = string.ascii_lowercase
    for i in range(len(word)):
        yield word[:i] + word[i + 1 :]
        for c in letters:
            yield word[:i] + c + word[i + 1 :]
    for i in range(len(word) + 1):
        for c in letters:
            yield word[:i] + c + word[i:]


@functools.cache
def _common_english() -> frozenset[str]:
    from wordfreq import top_n_list

    return frozenset(top_n_list("en", COMMON_ENGLISH_VOCABULARY_SIZE))


@functools.cache
def admissible(form: str) -> bool:
    """True when `form` is not English and not one edit away from a common English word."""
    common = _common_english()
    return not is_english(form) and not any(v in common for v in _one_edit_variants(form))


@functools.cache
def candidate_pool() -> tuple[str, ...]:
    """Every admissible nonsense word, sorted so that a seeded shuffle is reproducible."""
    words = {w for w in _phonotactic_words() if MIN_LENGTH <= len(w) <= MAX_LENGTH}
    return tuple(sorted(w for w in words if admissible(w)))


def within_one_edit(a: str, b: str) -> bool:
    """True when `a` and `b` are equal or one substitution, insertion or deletion apart."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :]
    return a[i:] == b[i + 1 :]


def sample_words(
    n: int,
    rng: random.Random,
    taken: Iterable[str] = (),
    forms: Callable[[int, str], tuple[str, ...]] | None = None,
) -> list[str]:
    """Draw `n` distinct nonsense words, each at edit distance >= 2 from every other and from `taken`.

    `forms(i, word)` lists every form in which the i-th drawn word will appear (e.g. the
    word and its plural); each must be admissible (not English, not one edit from a common
    English word) and at edit distance >= 2 from every form of the other words. The result
    depends only on `rng`'s state (and the candidate pool), so a seeded generator always
    draws the same words.
    """
    accepted: list[str] = []
    blocked = list(taken)
    pool = list(candidate_pool())
    rng.shuffle(pool)
    for word in pool:
        if len(accepted) == n:
            break
        word_forms = forms(len(accepted), word) if forms else (word,)
        if not all(form == word or admissible(form) for form in word_forms):
            continue
        if not any(within_one_edit(form, other) for form in word_forms for other in blocked):
            accepted.append(word)
            blocked.extend(word_forms)
    if len(accepted) < n:
        raise ValueError(f"the nonsense lexicon holds only {len(accepted)} mutually distinct words; asked for {n}")
    return accepted
