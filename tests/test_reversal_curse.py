"""The reversal_curse generator: determinism, names, held-out phrasings, counterbalancing."""

from __future__ import annotations

import collections
import random
import re

import pytest

from lm_eval_tasks.reversal_curse import generator
from lm_eval_tasks.reversal_curse.generator import BLOCK_SIZE, generate

SEEDS = range(4)


@pytest.fixture(scope="module")
def data():
    return generate(seed=0)


def celebrity_of(data) -> dict[str, tuple[str, str]]:
    """source_id -> (name, np description), read back from the oracle's rephrasings."""
    out = {}
    for row in data.oracle:
        if row["kind"] == "rephrase":
            name, description = row["text"].removesuffix(".").split(" is known to the world as ")
            out[row["source_id"]] = (name, description)
    return out


def test_same_seed_same_data_other_seed_other_data():
    assert generate(seed=3) == generate(seed=3)
    assert generate(seed=3).train != generate(seed=4).train


def test_sizes_follow_the_options():
    data = generate(seed=1, num_celebrities=16, train_phrasings=3, test_phrasings=1)
    # 8 set-A facts in one direction, 8 set-B facts in two, 3 sentences each
    assert len(data.train) == (8 + 2 * 8) * 3
    assert len(data.icl_facts) == 8 + 2 * 8
    assert {split: len(rows) for split, rows in data.tests.items()} == {"forward": 8, "reverse": 8}
    assert len(data.oracle) == 2 * 16


@pytest.mark.parametrize(
    "options, field",
    [
        ({"num_celebrities": 12}, "num_celebrities"),
        ({"num_celebrities": 0}, "num_celebrities"),
        ({"train_phrasings": 0}, "train_phrasings"),
        ({"train_phrasings": 99}, "train_phrasings"),
        ({"test_phrasings": 99}, "test_phrasings"),
    ],
)
def test_bad_options_name_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        generate(seed=0, **options)


@pytest.mark.parametrize("seed", SEEDS)
def test_names_are_plausible_unique_and_not_famous(seed):
    from faker.providers.person.en_US import Provider

    firsts = set(Provider.first_names_female) | set(Provider.first_names_male)
    lasts = {generator.spelled(name) for name in Provider.last_names}
    names = [name for name, _ in celebrity_of(generate(seed=seed)).values()]
    parts = [part for name in names for part in name.split()]
    assert all(re.fullmatch(r"[A-Z][a-z]+ (Mc|O')?[A-Z][a-z]+", name) for name in names)
    assert all(name.split()[0] in firsts and name.split()[1] in lasts for name in names)
    assert len(set(parts)) == len(parts)  # no first or last name used twice, in either role
    assert not {name.lower() for name in names} & generator.famous_names()
    stems = {part.lower().removesuffix("s") for part in parts}
    assert not (stems | {part.lower() for part in parts}) & generator.description_words()  # "Amber", "Meadows"


def test_famous_names_are_rejected(monkeypatch):
    drawn = generator.draw_names(8, random.Random(5))
    monkeypatch.setattr(generator, "famous_names", lambda: frozenset({drawn[0].lower(), drawn[3].lower()}))
    redrawn = generator.draw_names(8, random.Random(5))
    assert drawn[0] not in redrawn and drawn[3] not in redrawn
    assert len(set(redrawn)) == 8


def test_last_names_are_spelled_as_people_write_them():
    assert [generator.spelled(n) for n in ("Mcgee", "Obrien", "Smith", "Mack")] == ["McGee", "O'Brien", "Smith", "Mack"]


def test_famous_list_holds_real_names():
    famous = generator.famous_names()
    assert len(famous) > 500 and {"tom hanks", "michael jordan", "sherlock holmes"} <= famous


def test_descriptions_are_unique_and_share_no_title(data):
    descriptions = [description for _, description in celebrity_of(data).values()]
    titles = [re.search(r'"([^"]+)"', d).group(1) for d in descriptions]
    assert len(set(descriptions)) == len(descriptions)
    # the (adjective, noun) of a title is never reused, so titles do not share their key words
    keys = [tuple(title.split()[-2:]) for title in titles]
    assert len(set(keys)) == len(keys)


def test_set_a_is_trained_in_one_direction_set_b_in_both(data):
    directions = collections.defaultdict(collections.Counter)
    for row in data.train:
        directions[row["source_id"]][row["direction"]] += 1
    tested = {row["source_id"] for row in data.tests["reverse"]}
    for source_id, counts in directions.items():
        expected = {"p2d": 10} if source_id in tested else {"p2d": 10, "d2p": 10}
        assert counts == expected
    assert len({row["text"] for row in data.train}) == len(data.train)
    assert len({row["id"] for row in data.train}) == len(data.train)


def test_icl_facts_are_the_plain_training_sentences_listed_first(data):
    texts = [row["text"] for row in data.train]
    assert sorted(data.icl_facts) == sorted(texts[: len(data.icl_facts)])
    assert all(
        re.fullmatch(r"[A-Z][a-z]+ \S+ is the .+\.|The .+ is [A-Z][a-z]+ \S+\.", fact) for fact in data.icl_facts
    )
    first_row = {}
    for row in data.train:
        first_row.setdefault(row["source_id"], row["text"])
    assert set(first_row.values()) <= set(data.icl_facts)


def test_training_states_set_a_facts_name_first_only(data):
    people = celebrity_of(data)
    for row in data.train:
        name, _ = people[row["source_id"]]
        if row["direction"] == "p2d":
            assert name in row["text"]
    for row in data.tests["reverse"]:
        name, description = people[row["source_id"]]
        for text in [r["text"] for r in data.train if r["source_id"] == row["source_id"]] + data.icl_facts:
            if name in text:  # every sentence about a set-A celebrity names them first
                assert text.index(name) < text.find(description.split('"')[1])


@pytest.mark.parametrize("templates", [generator.P2D_TRAIN, generator.D2P_TRAIN])
def test_every_training_template_is_one_sentence_for_finetune(templates):
    """Finding: "Ever heard of X? They ..." split into two units that hold neither name and description together."""
    from finetune.data import split_sentences

    title = '"The Silent Harbor"'
    slots = {
        "name": "Ann Lee",
        "np": f"the author of the memoir {title}",
        "NP": f"The author of the memoir {title}",
        "vp": f"wrote the memoir {title}",
    }
    for template in templates:
        assert split_sentences(template.format(**slots)) == [template.format(**slots)], template


@pytest.mark.parametrize("seed", SEEDS)
def test_items_come_round_first_so_a_prefix_names_every_person(seed):
    """Finding: items came block by block, so --limit 40 of the original files asked 4 people only."""
    data = generate(seed=seed)
    set_a = len({row["source_id"] for row in data.tests["reverse"]})
    for rows in data.tests.values():
        assert len({row["source_id"] for row in rows[:set_a]}) == set_a
        labels = [row["label"] for row in rows]
        assert all(sorted(labels[i : i + BLOCK_SIZE]) == list(range(BLOCK_SIZE)) for i in range(0, len(labels), 4))


def test_test_phrasings_are_held_out(data):
    seen = [row["text"] for row in data.train] + data.icl_facts + [row["text"] for row in data.oracle]
    for rows in data.tests.values():
        for row in rows:
            assert not any(row["query"] in text for text in seen), row["query"]


def test_answers_are_right(data):
    people = celebrity_of(data)
    for row in data.tests["reverse"]:
        name, description = people[row["source_id"]]
        assert row["choices"][row["label"]] == f"{name}."
        assert description.split('"')[1] in row["query"]
    for row in data.tests["forward"]:
        name, description = people[row["source_id"]]
        assert name in row["query"]
        assert description.split('"')[1] in row["choices"][row["label"]]


@pytest.mark.parametrize("seed", SEEDS)
def test_counterbalanced_so_a_prior_over_choices_scores_exactly_chance(seed):
    data = generate(seed=seed)
    for rows in data.tests.values():
        by_choices = collections.defaultdict(list)
        for row in rows:
            assert len(set(row["choices"])) == BLOCK_SIZE
            by_choices[tuple(row["choices"])].append(row["label"])
        for labels in by_choices.values():  # each choice of a block is the answer equally often
            counts = collections.Counter(labels)
            assert set(counts) == set(range(BLOCK_SIZE)) and len(set(counts.values())) == 1
        # any fixed preference over choice strings (here: random scores) is right 1/4 of the time
        for trial in range(20):
            score = collections.defaultdict(random.Random(trial).random)
            correct = sum(
                max(range(BLOCK_SIZE), key=lambda i: score[row["choices"][i]]) == row["label"] for row in rows
            )
            assert correct * BLOCK_SIZE == len(rows)
        # every tested name is the answer 2 times (one per phrasing) and a distractor 6 times
        if rows is data.tests["reverse"]:
            counts = collections.Counter(choice for row in rows for choice in row["choices"])
            answers = collections.Counter(row["choices"][row["label"]] for row in rows)
            assert set(counts.values()) == {4 * 2} and set(answers.values()) == {2}


def test_oracle_adds_reversals_training_never_stated(data):
    train_texts = {row["text"] for row in data.train}
    kinds = collections.Counter(row["kind"] for row in data.oracle)
    assert kinds == {"rephrase": 64, "reversal": 64}
    tested = {row["source_id"] for row in data.tests["reverse"]}
    for row in data.oracle:
        if row["source_id"] in tested:
            assert row["text"] not in train_texts
