from __future__ import annotations

import collections
import json

import pytest

from lm_eval_tasks.api import FAMILIES, _generate_cached, build_task_dataset, generate_family, load_family
from lm_eval_tasks.reversal.generator import FEATURES, PREAMBLES


def as_json(family: str, seed: int, **options) -> str:
    data = generate_family(family, seed, **options)
    return json.dumps([data.train, data.icl_facts, data.tests, data.oracle], sort_keys=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_gives_byte_identical_data_and_another_seed_other_data(family):
    first = as_json(family, 0)
    _generate_cached.cache_clear()  # regenerate rather than hit the memo
    assert as_json(family, 0) == first
    assert as_json(family, 7) != first


@pytest.mark.parametrize("family", FAMILIES)
def test_rows_follow_the_documented_schemas(family):
    data = generate_family(family, 0)
    assert data.train and data.icl_facts and data.tests
    train_sources = {row["source_id"] for row in data.train}
    for row in data.train:
        assert {"id", "source_id", "text"} <= row.keys()
    for rows in data.tests.values():
        keys = rows[0].keys()
        for row in rows:
            assert row.keys() == keys
            assert {"id", "source_id", "query", "choices", "label"} <= row.keys()
            assert 0 <= row["label"] < len(row["choices"])
            assert row["source_id"] in train_sources  # every question is about a trained fact
    for row in data.oracle:
        assert row["kind"] in ("rephrase", "reversal", "inference")
        assert row["source_id"] in train_sources
    ids = [row["id"] for row in data.train + data.oracle] + [r["id"] for rows in data.tests.values() for r in rows]
    assert len(ids) == len(set(ids))


def test_reversal_has_the_papers_shape():
    data = generate_family("reversal", 0)
    assert len(data.icl_facts) == 100 and len(data.train) == 1000
    assert len({row["feature"] for row in data.tests["forward"]}) >= 28
    assert len(FEATURES) >= 28
    per_fact = collections.defaultdict(list)
    for row in data.train:
        per_fact[row["source_id"]].append(row["text"])
    assert len(per_fact) == 100
    for texts in per_fact.values():
        assert len(texts) == len(set(texts)) == 10  # 10 distinct preambles per fact


def test_reversal_training_examples_state_exactly_the_icl_facts():
    data = generate_family("reversal", 0)
    facts = [fact.removesuffix(".") for fact in data.icl_facts]
    for row in data.train:
        stated = [fact for fact in facts if fact in row["text"]]
        assert len(stated) == 1, row
        assert any(template.format(fact=stated[0]) == row["text"] for template in PREAMBLES)


def test_syllogism_training_documents_are_the_icl_facts():
    data = generate_family("syllogism", 0)
    assert len(data.train) == 72
    assert sorted(row["text"] for row in data.train) == sorted(data.icl_facts)


def test_load_family_is_a_dataset_dict_with_provenance():
    data = load_family("reversal", seed=3, num_facts=10, examples_per_fact=2)
    assert set(data) == {"train", "forward", "reverse", "oracle"}
    assert data["train"].num_rows == 20 and data["forward"].num_rows == 10
    provenance = json.loads(data["train"].info.description)
    assert provenance["data_seed"] == 3 and provenance["options"] == {"num_facts": 10, "examples_per_fact": 2}


def test_task_dataset_ignores_unrelated_metadata_and_coerces_strings():
    # lm-eval passes model_args and its own metadata keys to custom_dataset
    docs = build_task_dataset(
        family="reversal", seed="7", version=1.0, pretrained="/some/model", config_source="x.yaml", num_facts="10"
    )
    assert docs["forward"].num_rows == 10
    assert docs["forward"][0]["facts"] == generate_family("reversal", 7, num_facts=10).icl_facts


def test_icl_context_train_shows_every_training_document():
    docs = build_task_dataset(family="syllogism", icl_context="train")
    assert docs["deduction"][0]["facts"] == [row["text"] for row in generate_family("syllogism", 0).train]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: generate_family("nonexistent"), "unknown task family"),
        (lambda: generate_family("reversal", 0, num_fact=3), "unknown option"),
        (lambda: generate_family("reversal", 0, num_facts=7), "even number"),
        (lambda: generate_family("reversal", 0, num_facts="many"), "must be of type int"),
        (lambda: generate_family("reversal", 0, examples_per_fact=99), "examples_per_fact"),
        (lambda: generate_family("syllogism", 0, num_items=10), "multiple of 8"),
        (lambda: build_task_dataset(family="reversal", icl_context="everything"), "icl_context"),
    ],
)
def test_bad_options_are_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as err:
        call()
    assert "\n" not in str(err.value)
