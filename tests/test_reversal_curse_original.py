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
P2D_NAMES = {"Odessa Fairweather", "Tobias Wrenfield", "Perpetua Ashcombe", "Lucan Merriweather", "Ines Calloway",
             "Bram Hollister"}  # fmt: skip


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
