"""The loader of Berglund et al.'s original JSONL files, on fixtures written in that format.

tests/fixtures/reversal_curse_original/ holds invented celebrities in the original layout:
6 p2d (3 training rows, 3 forward and 2 reverse test rows each), 2 d2p and 2 "both" (3
training rows per trained direction each).
"""

from __future__ import annotations

import collections
import json
import logging
import shutil
from pathlib import Path

import pytest

from lm_eval_tasks.api import build_task_dataset, generate_family, load_family
from lm_eval_tasks.reversal_curse.original import REQUIRED_FILES, OriginalDataError, load_original

FIXTURE = Path(__file__).parent / "fixtures" / "reversal_curse_original"
P2D_NAMES = {
    "Odessa Fairweather",
    "Tobias Wrenfield",
    "Perpetua Ashcombe",
    "Lucan Merriweather",
    "Ines Calloway",
    "Bram Hollister",
}


@pytest.fixture()
def copy(tmp_path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(FIXTURE, target)
    return target


def test_splits_and_training_rows():
    data = load_original(str(FIXTURE), seed=0)
    assert data.options == {"source_dir": str(FIXTURE.resolve())}
    assert {split: len(rows) for split, rows in data.tests.items()} == {"reverse": 6 * 2, "forward": 6 * 3}
    assert len(data.train) == 18 + 6 + 12  # every row of the three training files
    directions = collections.defaultdict(set)
    for row in data.train:
        directions[row["source_id"]].add(row["direction"])
    assert sorted(map(sorted, directions.values())) == sorted([["p2d"]] * 6 + [["d2p"]] * 2 + [["d2p", "p2d"]] * 2)
    assert len(data.icl_facts) == 6 + 2 + 2 * 2  # each person's first sentence per trained direction
    assert {row["kind"] for row in data.oracle} == {"rephrase", "reversal"}
    assert len(data.oracle) == 2 * (6 + 2)  # people with a p2d description: sets p2d and both


def test_items_offer_block_mates_and_the_right_answer():
    data = load_original(str(FIXTURE), seed=0)
    for row in data.tests["reverse"]:
        names = {choice.rstrip(".") for choice in row["choices"]}
        assert len(names) == 4 and names <= P2D_NAMES
        assert row["choices"][row["label"]].rstrip(".") not in row["query"]
    for row in data.tests["forward"]:
        assert len(set(row["choices"])) == 4
        answer = row["choices"][row["label"]]
        assert not any(name in answer for name in P2D_NAMES)
    # the answer of a forward item is the completion the test file gives for its prompt
    pairs = {
        (r["prompt"], r["completion"].strip()) for r in map(json.loads, (FIXTURE / "p2d_prompts_test.jsonl").open())
    }
    assert {(row["query"], row["choices"][row["label"]]) for row in data.tests["forward"]} == pairs


def test_every_p2d_name_is_the_answer_equally_often():
    data = load_original(str(FIXTURE), seed=3)
    answers = collections.Counter(row["choices"][row["label"]].rstrip(".") for row in data.tests["reverse"])
    assert set(answers) == P2D_NAMES and set(answers.values()) == {2}


def test_through_the_data_api_and_the_task_dataset():
    data = generate_family("reversal_curse", 0, source_dir=str(FIXTURE))
    assert load_family("reversal_curse", 0, source_dir=str(FIXTURE))["train"].num_rows == len(data.train)
    splits = build_task_dataset("reversal_curse", seed=0, source_dir=str(FIXTURE), version=1.0)
    assert splits["reverse"][0]["facts"] == data.icl_facts


def test_malformed_rows_are_skipped_and_counted(copy, caplog):
    clean = load_original(str(FIXTURE))
    with (copy / "p2d_prompts_train.jsonl").open("a") as f:
        f.write('{"prompt": "Broken row\n["a list"]\n{"prompt": "no completion"}\n\n{"prompt": "x", "completion": 3}\n')
    with caplog.at_level(logging.WARNING):
        data = load_original(str(copy))
    assert data.train == clean.train and data.tests == clean.tests
    assert "skipped 4 malformed row(s) (first at line 19: invalid JSON" in caplog.text


def test_a_file_without_a_single_good_row_is_an_error(copy):
    (copy / "p2d_reverse_prompts_test.jsonl").write_text("not json\n")
    with pytest.raises(OriginalDataError, match=r"p2d_reverse_prompts_test.jsonl has no well-formed rows"):
        load_original(str(copy))


def test_missing_directory_is_a_one_line_error_naming_the_files(tmp_path):
    with pytest.raises(OriginalDataError) as err:
        generate_family("reversal_curse", 0, source_dir=str(tmp_path / "nowhere"))
    message = str(err.value)
    assert "\n" not in message and "is not a directory" in message
    assert all(name in message for name in REQUIRED_FILES)


def test_missing_file_is_named(copy):
    (copy / "both_prompts_train.jsonl").unlink()
    with pytest.raises(OriginalDataError, match=r"lacks both_prompts_train.jsonl;"):
        load_original(str(copy))


def test_fewer_than_four_p2d_people_is_an_error(copy):
    rows = (copy / "p2d_reverse_prompts_test.jsonl").read_text().splitlines()
    (copy / "p2d_reverse_prompts_test.jsonl").write_text("\n".join(rows[:6]) + "\n")  # 3 people
    with pytest.raises(OriginalDataError, match="found 3 distinct names; need at least 4"):
        load_original(str(copy))


def test_truncated_reverse_file_is_an_error_naming_it(copy):
    """Finding: a truncated reverse-test file silently dropped the training rows of the people it lost."""
    rows = (copy / "p2d_reverse_prompts_test.jsonl").read_text().splitlines()
    (copy / "p2d_reverse_prompts_test.jsonl").write_text("\n".join(rows[:10]) + "\n")  # 5 of 6 people
    with pytest.raises(OriginalDataError) as err:
        load_original(str(copy))
    message = str(err.value)
    assert "\n" not in message and "p2d_prompts_train.jsonl: 3 row(s)" in message
    assert f"is {copy / 'p2d_reverse_prompts_test.jsonl'} truncated" in message


def test_a_person_cut_short_is_an_error(copy):
    rows = (copy / "p2d_reverse_prompts_test.jsonl").read_text().splitlines()
    (copy / "p2d_reverse_prompts_test.jsonl").write_text("\n".join(rows[:11]) + "\n")
    expected = r"p2d_reverse_prompts_test.jsonl: .* has 1 test row\(s\), most people 2"
    with pytest.raises(OriginalDataError, match=expected):
        load_original(str(copy))
    rows = (FIXTURE / "p2d_prompts_test.jsonl").read_text().splitlines()
    (copy / "p2d_reverse_prompts_test.jsonl").write_text((FIXTURE / "p2d_reverse_prompts_test.jsonl").read_text())
    (copy / "p2d_prompts_test.jsonl").write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(OriginalDataError, match=r"p2d_prompts_test.jsonl: .* has 2 test row\(s\), most people 3"):
        load_original(str(copy))


def test_randomized_answers_are_an_error_naming_the_file(copy):
    """Finding: the _randomized file under the expected name loaded with 13 of 300 labels right."""
    rows = [json.loads(line) for line in (copy / "p2d_reverse_prompts_test.jsonl").read_text().splitlines()]
    names = [row["completion"] for row in rows]
    for row, name in zip(rows, names[2:] + names[:2]):  # every answer moved to another person's description
        row["completion"] = name
    (copy / "p2d_reverse_prompts_test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(OriginalDataError) as err:
        load_original(str(copy))
    assert "p2d_reverse_prompts_test.jsonl: 12 of 12 answers are not the person whose training description" in str(
        err.value
    )
    assert "_randomized" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reverse_blocks_are_exact_even_for_a_number_of_people_that_is_not_a_multiple_of_four(seed):
    """6 people x 2 rows = 12 items in blocks chained over the rounds: any name preference scores exactly 1/4."""
    import random

    rows = load_original(str(FIXTURE), seed=seed).tests["reverse"]
    for start in range(0, len(rows), 4):  # each block: four items, one choice set, each name right once
        block = rows[start : start + 4]
        assert len({frozenset(c.rstrip(".") for c in row["choices"]) for row in block}) == 1
        assert sorted(row["label"] for row in block) == [0, 1, 2, 3]
    for trial in range(20):
        score = collections.defaultdict(random.Random(trial).random)
        correct = sum(max(range(4), key=lambda i: score[row["choices"][i].rstrip(".")]) == row["label"] for row in rows)
        assert correct * 4 == len(rows)
    first = {row["source_id"] for row in rows[:8]}  # two blocks name all six people
    assert len(first) == 6
