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
blocks as in the generator (`shared.py`): `reverse` swaps in their names, `forward` takes
their completions of the same test template. Malformed rows (not JSON, not an object, no
non-empty string prompt and completion) are skipped and counted in a warning.

Files that do not fit together are a one-line `OriginalDataError` naming the file: a
missing directory or file; p2d training rows about people the reverse test file does not
name (a truncated reverse file would otherwise silently drop their training rows); a
person with fewer test rows than the others (a truncated test file); a test answer that is
not the person whose training description the prompt gives (the `_randomized` files of the
original repository, saved under the expected name, have almost every answer wrong).

Counterbalancing: `reverse` is exact whatever the number of people (blocks chained over
the rounds of test rows, `shared.chained_blocks`). `forward` items of a block must share a
test template, so when the number of people is not a multiple of four (30 in Berglund et
al.'s data) each template's last block tests the 2 remaining people and borrows 2
distractors from the others: those blocks (2 of 8 per template there) are approximately,
not exactly, balanced.
"""

from __future__ import annotations

import collections
import logging
import random
import re
from pathlib import Path

from icl_ft_common.io import read_jsonl_rows
from lm_eval_tasks.errors import DataError
from lm_eval_tasks.reversal_curse.matching import DescriptionMatcher
from lm_eval_tasks.reversal_curse.shared import BLOCK_SIZE, VERSION, blocks_of_four, chained_blocks
from lm_eval_tasks.spec import FamilyData

logger = logging.getLogger(__name__)

TRAIN_FILES = ("p2d_prompts_train.jsonl", "d2p_prompts_train.jsonl", "both_prompts_train.jsonl")
FORWARD_FILE = "p2d_prompts_test.jsonl"
REVERSE_FILE = "p2d_reverse_prompts_test.jsonl"
REQUIRED_FILES = (*TRAIN_FILES, FORWARD_FILE, REVERSE_FILE)
UPSTREAM_HINT = "data/reverse_experiments/june_version_7921032488 of github.com/lukasberglund/reversal_curse"

NAME_PART = re.compile(r"[A-Z][A-Za-z'-]+$")


class OriginalDataError(DataError):
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

    train, unassigned = [], collections.defaultdict(list)
    first_sentence: dict[tuple[str, str], str] = {}  # (name, direction) -> its first training sentence
    descriptions: dict[str, list[str]] = collections.defaultdict(list)  # p2d person -> training descriptions
    for file_name in TRAIN_FILES:
        for number, row in enumerate(files[file_name]):
            name = _find_name(row["prompt"], by_length)
            direction = "p2d" if name else "d2p"
            if not name:
                name = _leading_name(row["completion"])
            if name not in source_ids:
                unassigned[file_name].append(number + 1)
                continue
            text = (row["prompt"] + row["completion"]).strip()
            train.append(
                {
                    "id": f"{source_ids[name]}-{file_name.split('_')[0]}-{number}",
                    "source_id": source_ids[name],
                    "direction": direction,
                    "text": text,
                }
            )
            first_sentence.setdefault((name, direction), text)
            if direction == "p2d":
                descriptions[name].append(row["completion"].strip().rstrip("."))
    if unassigned.get(TRAIN_FILES[0]):
        lines = unassigned[TRAIN_FILES[0]]
        raise OriginalDataError(
            f"{directory / TRAIN_FILES[0]}: {len(lines)} row(s) (first at line {lines[0]}) are about people "
            f"{REVERSE_FILE} does not name; is {directory / REVERSE_FILE} truncated or from another dataset?"
        )
    for file_name, lines in unassigned.items():
        logger.warning("%s: skipped %d row(s) that name no known celebrity", directory / file_name, len(lines))

    matcher = DescriptionMatcher({name: descriptions[name] for name in p2d_names})
    rng = random.Random(f"reversal_curse-original-{seed}")
    reverse, reverse_needs = _reverse_items(
        directory / REVERSE_FILE, files[REVERSE_FILE], p2d_names, matcher, source_ids, rng
    )
    forward, forward_needs = _forward_items(
        directory / FORWARD_FILE, files[FORWARD_FILE], p2d_names, matcher, source_ids, by_length, rng
    )

    icl = list(first_sentence.items())
    rng.shuffle(icl)
    # The oracle restates each fact with its most frequent p2d description, in both orders.
    oracle = []
    for name, texts in descriptions.items():
        description = collections.Counter(texts).most_common(1)[0][0]
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
        icl_facts=[text for _, text in icl],
        tests={"reverse": reverse, "forward": forward},
        oracle=oracle,
        icl_fact_keys=[(source_ids[name],) for (name, _), _ in icl],
        train_fact_keys=[(row["source_id"],) for row in train],
        test_needs={"reverse": reverse_needs, "forward": forward_needs},
    )


def _rows_per_person(path: Path, rows_of: dict[str, list], names: list[str]) -> int:
    """Every p2d person must have as many test rows as every other; a shortfall means a truncated file."""
    counts = collections.Counter({name: len(rows_of.get(name, [])) for name in names})
    usual = counts.most_common(1)[0][1]
    short = [name for name in names if counts[name] != usual]
    if short:
        raise OriginalDataError(
            f"{path}: {short[0]} has {counts[short[0]]} test row(s), most people {usual} ({len(short)} people differ); "
            "is the file truncated?"
        )
    return usual


def _check_answers(path: Path, mismatches: list[str], total: int) -> None:
    if mismatches:
        raise OriginalDataError(
            f"{path}: {len(mismatches)} of {total} answers are not the person whose training description the prompt "
            f"gives ({mismatches[0]}); is it a _randomized file or one from another dataset?"
        )


def _reverse_items(
    path: Path, rows: list[dict], names: list[str], matcher: DescriptionMatcher, source_ids: dict[str, str], rng
) -> tuple[list[dict], list[tuple[str, ...]]]:
    """Description -> name: each person's k-th test row in round k; blocks chained over the rounds (exact)."""
    by_name = collections.defaultdict(list)
    mismatches = []
    for number, row in enumerate(rows, 1):
        name = _leading_name(row["completion"])
        if name is None:
            continue
        described = matcher.person_of(row["prompt"])
        if described is not None and described != name:
            mismatches.append(f"line {number}: {name!r} for {described}'s description")
        by_name[name].append(row)
    _check_answers(path, mismatches, len(rows))
    if by_name.get(None):
        logger.warning("%s: skipped %d test row(s) whose completion is not a name", path, len(by_name[None]))
    rounds = _rows_per_person(path, by_name, names)
    items, needs = [], []
    for block in chained_blocks([names] * rounds, rng):
        mates = [name for _, name in block]
        for label in rng.sample(range(len(block)), len(block)):
            k, name = block[label]
            row = by_name[name][k]
            answer = row["completion"].strip()
            choices = [answer.replace(name, mate) for mate in mates]
            if len(choices) < BLOCK_SIZE:  # a short last block: only when rows x people is not a multiple of 4
                others = [n for n in names if n not in mates]
                choices += [answer.replace(name, mate) for mate in others[: BLOCK_SIZE - len(choices)]]
            items.append(_item("reverse", len(items), source_ids[name], row["prompt"], choices, label))
            needs.append((source_ids[name],))
    return items, needs


def _forward_items(
    path: Path,
    rows: list[dict],
    names: list[str],
    matcher: DescriptionMatcher,
    source_ids: dict[str, str],
    by_length: list[str],
    rng,
) -> tuple[list[dict], list[tuple[str, ...]]]:
    """Name -> description: the choices are the block's completions of the same test template.

    A template is the prompt with the name taken out; a template that occurs twice for one
    person (the original repeats some) is told apart by its occurrence number. Templates
    are asked round by round, in the order of the file."""
    completions: dict[tuple[str, str, int], str] = {}  # (name, template, occurrence) -> completion
    keys_of: dict[str, list] = collections.defaultdict(list)  # person -> their template keys in file order
    mismatches, skipped = [], 0
    for number, row in enumerate(rows, 1):
        name = _find_name(row["prompt"], by_length)
        if name not in names:
            skipped += 1
            continue
        described = matcher.person_of(row["completion"])
        if described is not None and described != name:
            mismatches.append(f"line {number}: {described}'s description for {name!r}")
        template = row["prompt"].replace(name, "\0")
        key = (template, sum(1 for seen, _ in keys_of[name] if seen == template))
        completions[(name, *key)] = row["completion"].strip()
        keys_of[name].append(key)
    _check_answers(path, mismatches, len(rows))
    _rows_per_person(path, keys_of, names)
    items, needs = [], []
    for key in dict.fromkeys(key for name in names for key in keys_of[name]):
        askable = [name for name in names if (name, *key) in completions]
        for block, owners in blocks_of_four(askable, rng):
            for label in rng.sample(range(owners), owners):
                name = block[label]
                choices = [completions[(mate, *key)] for mate in block]
                items.append(_item("forward", len(items), source_ids[name], key[0].replace("\0", name), choices, label))
                needs.append((source_ids[name],))
    if skipped:
        logger.warning("%s: skipped %d test row(s) naming no p2d celebrity", path, skipped)
    return items, needs


def _item(split: str, number: int, source_id: str, prompt: str, choices: list[str], label: int) -> dict:
    return {
        "id": f"reversal_curse-{split}-{number:03d}",
        "source_id": source_id,
        "query": prompt.strip(),
        "choices": choices,
        "label": label,
    }
