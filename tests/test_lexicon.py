from __future__ import annotations

import itertools
import random

import pytest
from wordfreq import top_n_list, zipf_frequency

from lm_eval_tasks import lexicon


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@pytest.fixture(scope="module")
def words():
    return lexicon.sample_words(400, random.Random(0))


def test_words_follow_the_phonotactic_rules(words):
    shapes = set(lexicon._phonotactic_words())
    for word in words:
        assert lexicon.MIN_LENGTH <= len(word) <= lexicon.MAX_LENGTH
        assert word.isascii() and word.isalpha() and word.islower()
        assert word in shapes


def test_words_are_absent_from_english(words):
    assert all(zipf_frequency(word, "en") == 0 for word in words)


def test_words_are_not_one_edit_from_a_common_english_word(words):
    common = top_n_list("en", lexicon.COMMON_ENGLISH_VOCABULARY_SIZE)
    # An independent (slow) check on a sample: the generator uses one-edit variants instead.
    close = [(w, c) for w in words[:100] for c in common if abs(len(w) - len(c)) <= 1 and levenshtein(w, c) <= 1]
    assert close == []


def test_words_of_one_draw_are_pairwise_at_edit_distance_two_or_more(words):
    assert all(levenshtein(a, b) >= 2 for a, b in itertools.combinations(words, 2))


def test_taken_words_are_avoided():
    taken = lexicon.sample_words(50, random.Random(1))
    more = lexicon.sample_words(50, random.Random(2), taken=taken)
    assert all(levenshtein(a, b) >= 2 for a in taken for b in more)


def test_same_seed_same_words_other_seed_other_words():
    assert lexicon.sample_words(30, random.Random(5)) == lexicon.sample_words(30, random.Random(5))
    assert lexicon.sample_words(30, random.Random(5)) != lexicon.sample_words(30, random.Random(6))


def test_within_one_edit_agrees_with_levenshtein():
    rng = random.Random(0)
    alphabet = "abc"  # a small alphabet makes near pairs common
    for _ in range(3000):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
        assert lexicon.within_one_edit(a, b) == (levenshtein(a, b) <= 1), (a, b)


def test_asking_for_more_words_than_exist_is_a_clear_error():
    with pytest.raises(ValueError, match="mutually distinct words"):
        lexicon.sample_words(len(lexicon.candidate_pool()) + 1, random.Random(0))


def test_inflected_forms_are_checked_like_base_words():
    """Finding: "negus", "rubus", "krokus" (plurals of admissible words) appeared in semantic data."""
    english_plurals = ["negu", "rubu", "divu", "totu", "kroku", "skelo"]
    assert all(word in lexicon.candidate_pool() and not lexicon.admissible(word + "s") for word in english_plurals)
    words = lexicon.sample_words(500, random.Random(0), forms=lambda i, word: (word, word + "s"))
    assert not set(words) & set(english_plurals)
    assert all(lexicon.admissible(word + "s") for word in words)
    forms = [form for word in words for form in (word, word + "s")]
    others = {form: word for word in words for form in (word, word + "s")}
    # no form of one word is one edit from a form of another ("grud"+"s" vs "grudi")
    index = {}
    for form in forms:
        index.setdefault(len(form), []).append(form)
    for form in forms[:400]:
        near = [f for n in (len(form) - 1, len(form), len(form) + 1) for f in index.get(n, [])]
        assert all(others[f] == others[form] or not lexicon.within_one_edit(form, f) for f in near)


@pytest.mark.parametrize("preset", ["small", "paper"])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_semantic_surface_form_is_admissible(preset, seed):
    from lm_eval_tasks.semantic.generator import build_instance

    forms = build_instance(seed, preset=preset).vocab.surface_forms
    assert [form for form in forms if not lexicon.admissible(form)] == []
