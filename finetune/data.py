"""Training data: documents -> training units -> tokenized examples -> a fixed batch order.

Documents are the family's training split (`lm_eval_tasks.api`) plus optional JSONL files
of extra documents (rows with a "text" field, e.g. written by `augment`). A document
becomes training units in one of three ways (the paper's options):

- `sentence`: every sentence alone (the paper's default; it helped finetuning a lot);
- `cumulative`: sentence i with the preceding sentences of its document as context. The
  context is NOT in the loss (labels -100): each sentence is learned once, as in
  `sentence`, but conditioned on where it stands, so earlier sentences are not trained
  again and again;
- `document`: the whole document.

The whole run's batch order is fixed up front from the seed (`training_order`), which is
what makes runs reproducible, resumable mid-epoch and identical in what each optimizer
step sees whatever the number of processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import re
from pathlib import Path
from typing import Any

from finetune.errors import DataError
from icl_ft_common.io import read_jsonl_rows

logger = logging.getLogger(__name__)

# A sentence ends at . ! or ? followed by whitespace, or at a line break. Nonsense-word
# facts start lowercase ("femp are bigger than glon."), so no capital letter is required;
# the price is that abbreviations ("e.g. ...") split too, which costs nothing here.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")
# Optimizer batches per sorted group in `training_order`: large enough that neighbours in a
# group have nearly equal lengths, small enough that the order stays well shuffled.
GROUP_BATCHES = 32


@dataclasses.dataclass(frozen=True)
class TrainingUnit:
    """One training example: `target` is learned, `context` (possibly empty) is only conditioned on."""

    context: str
    target: str
    source: str  # "family" or the name of the extra-data file


@dataclasses.dataclass
class ExtraFile:
    path: str
    sha256: str
    rows_used: int
    rows_skipped: int


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text.strip()) if part.strip()]


def make_units(documents: list[tuple[str, str]], unit: str) -> list[TrainingUnit]:
    """Training units from (source, text) documents, in document order."""
    units = []
    for source, text in documents:
        if unit == "document":
            units.append(TrainingUnit("", text.strip(), source))
            continue
        sentences = split_sentences(text)
        for i, sentence in enumerate(sentences):
            context = " ".join(sentences[:i]) if unit == "cumulative" else ""
            units.append(TrainingUnit(context, sentence, source))
    return units


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_extra_file(path: str | Path) -> tuple[list[str], ExtraFile]:
    """The "text" of every well-formed row; malformed rows are skipped and counted.

    A row is well-formed if it is a JSON object with a non-empty string "text"; any other
    fields (augment's id, source_id, kind, provenance) are ignored here. A file with no
    well-formed row is an error: training silently without it would be worse.
    """
    path = Path(path)
    try:
        read = read_jsonl_rows(path, required=("text",))
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read extra data file {path}: {err}") from None
    texts, skipped = [row["text"] for row in read.rows], read.skipped
    if skipped:
        logger.warning(read.describe_skipped(path))
    if not texts:
        raise DataError(f'extra data file {path} has no usable row ({skipped} malformed): rows need a non-empty "text"')
    return texts, ExtraFile(str(path.resolve()), sha256_file(path), len(texts), skipped)


def load_documents(family: str, data_seed: int, family_options: dict[str, Any], extra_data: list[str]):
    """(documents as (source, text), the family's provenance, one ExtraFile per extra file)."""
    from lm_eval_tasks.api import generate_family

    # The rows of `load_family(family, data_seed, **family_options)["train"]`, without
    # building a datasets.Dataset around them.
    family_data = generate_family(family, data_seed, **family_options)
    documents = [("family", row["text"]) for row in family_data.train]
    extra_files = []
    for path in extra_data:
        texts, info = read_extra_file(path)
        documents += [(Path(path).name, text) for text in texts]
        extra_files.append(info)
    return documents, family_data.provenance(), extra_files


def tokenize_units(units: list[TrainingUnit], tokenizer, max_length: int) -> tuple[list[dict[str, list[int]]], int]:
    """Examples {"input_ids", "labels"} and the number of units truncated to `max_length`.

    Context and target are encoded separately and concatenated, the target with a leading
    space: exactly how lm-eval splits a prompt from the continuation it scores.
    """
    examples, truncated = [], 0
    for unit in units:
        if unit.context:
            context_ids = tokenizer(unit.context)["input_ids"]
            target_ids = tokenizer(" " + unit.target, add_special_tokens=False)["input_ids"]
        else:
            context_ids, target_ids = [], tokenizer(unit.target)["input_ids"]
        input_ids = (context_ids + target_ids)[:max_length]
        truncated += len(context_ids) + len(target_ids) > max_length
        labels = ([-100] * len(context_ids) + target_ids)[:max_length]
        examples.append({"input_ids": input_ids, "labels": labels})
    return examples, truncated


def training_order(lengths: list[int], num_examples: int, batch_size: int, seed: int) -> list[int]:
    """Indices of the examples of the whole run, `num_examples` long, grouped by length.

    Each epoch is a fresh seeded permutation, cut into groups of GROUP_BATCHES optimizer
    batches; a group is sorted by length and cut into batches, which are then shuffled
    (so steps do not sweep from short to long). Within a batch the units are sorted, so
    the micro-batches it is split into (per process, per accumulation step) hold units of
    nearly equal length and little padding. The order depends only on the optimizer batch
    size, not on how a batch is split: 1 and N processes train on the same steps. The
    last epoch is cut short at `num_examples`.
    """
    order: list[int] = []
    epoch = 0
    group_size = GROUP_BATCHES * batch_size
    while len(order) < num_examples:
        rng = random.Random(f"finetune-order-{seed}-{epoch}")
        permutation = list(range(len(lengths)))
        rng.shuffle(permutation)
        for start in range(0, len(permutation), group_size):
            group = sorted(permutation[start : start + group_size], key=lambda i: lengths[i])
            batches = [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
            rng.shuffle(batches)
            order += [index for batch in batches for index in batch]
        epoch += 1
    return order[:num_examples]


def padding_stats(lengths: list[int], order: list[int], micro_batch_size: int) -> dict[str, int | float]:
    """Real and padded tokens processed when `order` is cut into micro-batches padded to their longest."""
    real = padded = 0
    for start in range(0, len(order), micro_batch_size):
        batch = [lengths[i] for i in order[start : start + micro_batch_size]]
        real += sum(batch)
        padded += max(batch) * len(batch)
    return {"tokens": real, "padding_tokens": padded - real, "padding_fraction": (padded - real) / max(padded, 1)}


class PaddingCollator:
    """Right-pads a list of examples into tensors; padding is masked out of attention and loss."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        longest = max(len(example["input_ids"]) for example in examples)
        batch = {"input_ids": [], "attention_mask": [], "labels": []}
        for example in examples:
            padding = longest - len(example["input_ids"])
            batch["input_ids"].append(example["input_ids"] + [self.pad_token_id] * padding)
            batch["attention_mask"].append([1] * len(example["input_ids"]) + [0] * padding)
            batch["labels"].append(example["labels"] + [-100] * padding)
        return {name: torch.tensor(rows, dtype=torch.long) for name, rows in batch.items()}
