"""`icl-ft audit FAMILY`: a generated dataset's card, printed and written as markdown and JSON.

    icl-ft audit semantic --family-option preset=paper --data-seed 1 --out audits/

The checks are `lm_eval_tasks.audit`'s; this command passes finetune's own unit maker, so
the learnability check cuts documents exactly as training does, and writes
OUT/<family>[-<option>-<value>...]-seed<N>.md and .json (OUT defaults to ./audits). The
exit status is 0 when every check passed, 1 when some failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path


def finetune_units(texts: list[str], unit: str) -> list[tuple[str, str]]:
    """(context, target) of every training unit `finetune --unit UNIT` makes from `texts`."""
    from finetune.data import make_units

    return [(u.context, u.target) for u in make_units([("family", text) for text in texts], unit)]


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, path)


def card_stem(family: str, options: dict[str, str], seed: int) -> str:
    """The card's file name without suffix: the family, its options and the seed."""
    parts = [family, *(f"{name}-{value}" for name, value in sorted(options.items())), f"seed{seed}"]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "-".join(parts))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("family", help="task family, e.g. reversal, syllogism, semantic, reversal_curse")
    parser.add_argument("--family-option", "--option", dest="family_option", action="append", default=[],
                        metavar="NAME=VALUE", help="data option of the family, e.g. preset=paper (repeatable)")  # fmt: skip
    parser.add_argument("--data-seed", "--seed", dest="data_seed", type=int, default=0, help="data seed (default 0)")
    parser.add_argument("--out", default="audits", help="directory of the card's .md and .json (default ./audits)")


def run_cli(args: argparse.Namespace) -> int:
    from lm_eval_tasks.api import generate_family, parse_family_options
    from lm_eval_tasks.audit import audit_data, render_markdown
    from lm_eval_tasks.errors import DataError

    try:
        options = parse_family_options(args.family_option)
        data = generate_family(args.family, args.data_seed, **options)
    except DataError as err:
        print(f"icl-ft: error: {err}", file=sys.stderr)
        return 2
    card = audit_data(data, finetune_units)
    markdown = render_markdown(card)
    print(markdown, end="")
    stem = Path(args.out) / card_stem(args.family, options, args.data_seed)
    try:
        _write_atomically(stem.with_suffix(".md"), markdown)
        _write_atomically(stem.with_suffix(".json"), json.dumps(card, indent=1, ensure_ascii=False) + "\n")
    except OSError as err:
        print(f"icl-ft: error: cannot write {stem}.md ({err.strerror}); pass a writable --out", file=sys.stderr)
        return 2
    print(f"\ncard: {stem}.md, {stem}.json", file=sys.stderr)
    return 0 if card["passed"] else 1
