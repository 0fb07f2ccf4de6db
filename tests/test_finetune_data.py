"""Training units, extra data files, tokenization, batch order and padding. Tokenizer only, no model."""

from __future__ import annotations

import json
import random

import pytest

from finetune import data


def test_sentences_split_at_end_punctuation_and_line_breaks():
    text = "The relationships between a, b and c are: All a are b. All c are a.\nfemp are bigger than glon!"
    assert data.split_sentences(text) == [
        "The relationships between a, b and c are: All a are b.",
        "All c are a.",
        "femp are bigger than glon!",
    ]


def test_units_sentence_cumulative_document():
    documents = [("family", "One is here. Two is here. Three is here.")]
    sentences = data.make_units(documents, "sentence")
    assert [(u.context, u.target) for u in sentences] == [
        ("", "One is here."),
        ("", "Two is here."),
        ("", "Three is here."),
    ]
    cumulative = data.make_units(documents, "cumulative")
    assert [(u.context, u.target) for u in cumulative] == [
        ("", "One is here."),
        ("One is here.", "Two is here."),
        ("One is here. Two is here.", "Three is here."),
    ]
    assert [u.target for u in data.make_units(documents, "document")] == ["One is here. Two is here. Three is here."]


def test_extra_file_skips_and_counts_malformed_rows(tmp_path):
    path = tmp_path / "aug.jsonl"
    rows = [
        json.dumps({"id": "x1", "source_id": "s", "kind": "reversal", "text": "glon are smaller than femp."}),
        "{not json",
        json.dumps({"text": ""}),
        json.dumps(["text"]),
        "",
        json.dumps({"text": 3}),
        json.dumps({"id": "x2", "text": "Fun fact: troff are older than yomp."}),
    ]
    path.write_text("\n".join(rows) + "\n")
    texts, info = data.read_extra_file(path)
    assert texts == ["glon are smaller than femp.", "Fun fact: troff are older than yomp."]
    assert (info.rows_used, info.rows_skipped) == (2, 4)
    assert info.sha256 == data.sha256_file(path)


def test_extra_file_without_usable_rows_is_an_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"txt": "a"}\n')
    with pytest.raises(data.DataError, match="no usable row"):
        data.read_extra_file(path)


def test_family_documents_and_provenance_plus_extra_files(tmp_path):
    path = tmp_path / "aug.jsonl"
    path.write_text(json.dumps({"text": "glon are smaller than femp."}) + "\n")
    documents, family, extra = data.load_documents("syllogism", 3, {"num_items": 8}, [str(path)])
    assert len(documents) == 9 and documents[-1] == ("aug.jsonl", "glon are smaller than femp.")
    assert (family["family"], family["data_seed"], family["options"]) == ("syllogism", 3, {"num_items": 8})
    assert extra[0].rows_used == 1


@pytest.fixture(scope="module")
def tokenizer():
    from tests.tiny_models import build_tokenizer

    return build_tokenizer()


def test_cumulative_context_is_masked_out_of_the_loss(tokenizer):
    unit = data.TrainingUnit("femp are bigger than glon.", "glon are smaller than femp.", "family")
    (example,), truncated = data.tokenize_units([unit], tokenizer, max_length=256)
    context_length = len(tokenizer(unit.context)["input_ids"])
    assert example["labels"][:context_length] == [-100] * context_length
    assert example["labels"][context_length:] == example["input_ids"][context_length:] != []
    assert truncated == 0
    (short,), truncated = data.tokenize_units([unit], tokenizer, max_length=5)
    assert len(short["input_ids"]) == len(short["labels"]) == 5 and truncated == 1


def test_training_order_is_seeded_epoch_permutations():
    lengths = [random.Random(i).randint(5, 40) for i in range(100)]
    order = data.training_order(lengths, 250, batch_size=8, seed=1)
    assert len(order) == 250
    assert sorted(order[:100]) == sorted(order[100:200]) == list(range(100))
    assert order[:100] != order[100:200]
    assert order == data.training_order(lengths, 250, batch_size=8, seed=1)
    assert order != data.training_order(lengths, 250, batch_size=8, seed=2)


def test_length_grouping_keeps_padding_under_ten_percent_on_family_data(tokenizer):
    for family in ("reversal", "syllogism"):
        documents, _, _ = data.load_documents(family, 0, {}, [])
        examples, _ = data.tokenize_units(data.make_units(documents, "sentence"), tokenizer, 256)
        lengths = [len(e["input_ids"]) for e in examples]
        grouped = data.padding_stats(lengths, data.training_order(lengths, 3000, 8, 0), 8)
        rng = random.Random(0)
        shuffled_order = [rng.randrange(len(lengths)) for _ in range(3000)]
        shuffled = data.padding_stats(lengths, shuffled_order, 8)
        assert grouped["padding_fraction"] < 0.10
        assert grouped["padding_fraction"] < shuffled["padding_fraction"]
        assert grouped["tokens"] + grouped["padding_tokens"] >= grouped["tokens"] > 0


def test_collator_pads_right_and_masks_padding():
    batch = data.PaddingCollator(pad_token_id=0)(
        [
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
            {"input_ids": [8], "labels": [8]},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
