"""The original reversal-curse data of Berglund et al. (2023), read into this family's splits.

    lm_eval ... --tasks icl_ft_reversal_curse \\
        --metadata '{"source_dir": "reversal_curse/data/reverse_experiments/june_version_7921032488"}'

The data lives in github.com/lukasberglund/reversal_curse (Experiment 1) and is not
redistributed here: its license is not stated. A dataset directory holds JSONL files with rows
{"prompt": ..., "completion": " ..."} (`src/tasks/reverse_experiments/reverse_task.py` writes
them); this loader reads

    p2d_prompts_train.jsonl        set "p2d": name -> description only (our set A)
    d2p_prompts_train.jsonl        set "d2p": description -> name only
    both_prompts_train.jsonl       set "both": the p2d rows, then the d2p rows (our set B)
    p2d_prompts_test.jsonl         p2d set, held-out p2d phrasings        -> split `forward`
    p2d_reverse_prompts_test.jsonl p2d set, held-out d2p phrasings, the
                                   completion cut to the name             -> split `reverse`

Training rows are prompt + completion of all three training files (the original's
all_prompts_train). Names are "First Last", as in the original's names.txt: a d2p row's
completion starts with the name, a p2d row's prompt contains it. The four choices of an item
are the item's own completion and those of three other p2d celebrities, counterbalanced in
blocks as in the generator: `reverse` swaps in their names, `forward` takes their completions
of the same test template. Malformed rows (not JSON, not an object, no non-empty string
prompt and completion) and rows that name no known celebrity are skipped and counted in a
warning; a missing directory or file is a one-line error naming the expected files.
"""

from __future__ import annotations

import collections
import logging
import random
import re
from pathlib import Path

from icl_ft_common.io import read_jsonl_rows
from lm_eval_tasks.reversal_curse.shared import BLOCK_SIZE, VERSION, blocks_of_four
from lm_eval_tasks.spec import FamilyData

logger = logging.getLogger(__name__)

TRAIN_FILES = ("p2d_prompts_train.jsonl", "d2p_prompts_train.jsonl", "both_prompts_train.jsonl")
FORWARD_FILE = "p2d_prompts_test.jsonl"
REVERSE_FILE = "p2d_reverse_prompts_test.jsonl"
REQUIRED_FILES = (*TRAIN_FILES, FORWARD_FILE, REVERSE_FILE)
UPSTREAM_HINT = "data/reverse_experiments/june_version_7921032488 of github.com/lukasberglund/reversal_curse"

NAME_PART = re.compile(r"[A-Z][A-Za-z'-]+$")


class OriginalDataError(ValueError):
    """The source directory cannot be read as reversal-curse data."""


def _read_jsonl(path: Path) -> list[dict[str, str]]:
    """The well-formed rows of one file; malformed ones are counted and logged."""
    read = read_jsonl_rows(path, required=("prompt", "completion"))
    if read.skipped:
        logger.warning(read.describe_skipped(path))
    if not read.rows:
        raise OriginalDataError(
            f"{path} has no well-formed rows ({read.skipped} malformed, first at {read.first_problem or 'n/a'})"
        )
    return [{"prompt": row["prompt"], "completion": row["completion"]} for row in read.rows]


def _leading_name(text: str) -> str | None:
    """The "First Last" name a completion starts with, if its first two words look like one."""
    words = [word.strip('.,;:!?"') for word in text.split()[:2]]
    return " ".join(words) if len(words) == 2 and all(NAME_PART.match(word) for word in words) else None


def _find_name(text: str, names: list[str]) -> str | None:
    return next((name for name in names if name in text), None)  # names sorted longest first


def _directory(source_dir: str) -> Path:
    directory = Path(source_dir).expanduser()
    expected = ", ".join(REQUIRED_FILES)
    if not directory.is_dir():
        raise OriginalDataError(
            f"source_dir {directory} is not a directory; expected one with {expected} (e.g. {UPSTREAM_HINT})"
        )
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise OriginalDataError(
            f"source_dir {directory} lacks {', '.join(missing)}; expected {expected} (e.g. {UPSTREAM_HINT})"
        )
    return directory


def _people(files: dict[str, list[dict]]) -> tuple[list[str], list[str]]:
    """(the p2d set's names, everyone's names), each in order of first appearance.

    p2d names are the reverse test's answers. The other names start d2p completions: every
    d2p completion in d2p_prompts_train, and those of both_prompts_train whose name also
    occurs in a prompt of that file (its p2d half). A name must start two completions, so a
    completion that happens to open with two capitalized words is not taken for a person."""
    p2d_names = [n for n in dict.fromkeys(_leading_name(r["completion"]) for r in files[REVERSE_FILE]) if n]
    both_prompts = "\n".join(r["prompt"] for r in files["both_prompts_train.jsonl"])
    others = collections.Counter()
    for file_name in ("d2p_prompts_train.jsonl", "both_prompts_train.jsonl"):
        for row in files[file_name]:
            name = _leading_name(row["completion"])
            if name and (file_name.startswith("d2p") or name in both_prompts):
                others[name] += 1
    people = list(dict.fromkeys(p2d_names + [name for name, count in others.items() if count >= 2]))
    return p2d_names, people


def load_original(source_dir: str, seed: int = 0) -> FamilyData:
    directory = _directory(source_dir)
    files = {name: _read_jsonl(directory / name) for name in REQUIRED_FILES}

    p2d_names, people = _people(files)
    if len(p2d_names) < BLOCK_SIZE:
        raise OriginalDataError(
            f"{directory / REVERSE_FILE}: found {len(p2d_names)} distinct names; need at least {BLOCK_SIZE}"
        )
    by_length = sorted(people, key=len, reverse=True)
    source_ids = {name: f"reversal_curse-original-{i:03d}" for i, name in enumerate(people)}

    train, unassigned = [], collections.Counter()
    first_sentence: dict[tuple[str, str], str] = {}  # (name, direction) -> its first training sentence
    p2d_completions: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for file_name in TRAIN_FILES:
        for number, row in enumerate(files[file_name]):
            name = _find_name(row["prompt"], by_length)
            direction = "p2d" if name else "d2p"
            if not name:
                name = _leading_name(row["completion"])
            if name not in source_ids:
                unassigned[file_name] += 1
                continue
            text = (row["prompt"] + row["completion"]).strip()
            train.append({"id": f"{source_ids[name]}-{file_name.split('_')[0]}-{number}", "source_id": source_ids[name],
                          "direction": direction, "text": text})  # fmt: skip
            first_sentence.setdefault((name, direction), text)
            if direction == "p2d":
                p2d_completions[name][row["completion"].strip().rstrip(".")] += 1
    for file_name, count in unassigned.items():
        logger.warning("%s: skipped %d row(s) that name no known celebrity", directory / file_name, count)

    rng = random.Random(f"reversal_curse-original-{seed}")
    blocks = blocks_of_four(p2d_names, rng)
    tests = {"reverse": _reverse_items(files[REVERSE_FILE], blocks, source_ids),
             "forward": _forward_items(files[FORWARD_FILE], blocks, source_ids, by_length)}  # fmt: skip

    icl_facts = list(first_sentence.values())
    rng.shuffle(icl_facts)
    # The oracle restates each fact with its most frequent p2d description, in both orders.
    oracle = []
    for name, counts in p2d_completions.items():
        description = counts.most_common(1)[0][0]
        for kind, text in (
            ("rephrase", f"{name} is {description}."),
            ("reversal", f"{description[0].upper()}{description[1:]} is {name}."),
        ):
            oracle.append(
                {"id": f"{source_ids[name]}-oracle-{kind}", "source_id": source_ids[name], "kind": kind, "text": text}
            )
    return FamilyData(
        family="reversal_curse",
        version=VERSION,
        seed=seed,
        options={"source_dir": str(directory.resolve())},
        train=train,
        icl_facts=icl_facts,
        tests=tests,
        oracle=oracle,
    )


def _reverse_items(rows: list[dict], blocks: list, source_ids: dict[str, str]) -> list[dict]:
    """Description -> name: the k-th test row of each block owner, its name and the block-mates'."""
    by_name = collections.defaultdict(list)
    for row in rows:
        by_name[_leading_name(row["completion"])].append(row)
    if by_name.get(None):
        logger.warning("%s: skipped %d test row(s) whose completion is not a name", REVERSE_FILE, len(by_name[None]))
    items = []
    for block, owners in blocks:
        for k in range(max(len(by_name[name]) for name in block[:owners])):
            for label, name in enumerate(block[:owners]):
                if k < len(by_name[name]):
                    row = by_name[name][k]
                    answer = row["completion"].strip()
                    choices = [answer.replace(name, mate) for mate in block]
                    items.append(_item("reverse", len(items), source_ids[name], row["prompt"], choices, label))
    return items


def _forward_items(rows: list[dict], blocks: list, source_ids: dict[str, str], by_length: list[str]) -> list[dict]:
    """Name -> description: the choices are the block's completions of the same test template.

    A template is the prompt with the name taken out; a template that occurs twice for one
    person (the original repeats some) is told apart by its occurrence number."""
    completions: dict[tuple[str, str, int], str] = {}  # (name, template, occurrence) -> completion
    templates: dict[str, list] = collections.defaultdict(list)  # block owner -> its keys in file order
    skipped = 0
    for row in rows:
        name = _find_name(row["prompt"], by_length)
        if name is None:
            skipped += 1
            continue
        template = row["prompt"].replace(name, "\0")
        key = (template, sum(1 for seen, _ in templates[name] if seen == template))
        completions[(name, *key)] = row["completion"].strip()
        templates[name].append(key)
    items = []
    for block, owners in blocks:
        keys = list(dict.fromkeys(key for name in block[:owners] for key in templates[name]))
        for key in keys:
            for label, name in enumerate(block[:owners]):
                choices = [completions.get((mate, *key)) for mate in block]
                if key not in templates[name]:
                    continue
                if None in choices:
                    skipped += 1
                    continue
                query = key[0].replace("\0", name)
                items.append(_item("forward", len(items), source_ids[name], query, choices, label))
    if skipped:
        logger.warning(
            "%s: skipped %d test row(s) naming no p2d celebrity or lacking a block-mate's template",
            FORWARD_FILE,
            skipped,
        )
    return items


def _item(split: str, number: int, source_id: str, prompt: str, choices: list[str], label: int) -> dict:
    return {"id": f"reversal_curse-{split}-{number:03d}", "source_id": source_id, "query": prompt.strip(),
            "choices": choices, "label": label}  # fmt: skip
