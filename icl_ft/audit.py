"""`icl-ft audit FAMILY`: a generated dataset's card, printed and written as markdown and JSON.

    icl-ft audit semantic --family-option preset=paper --data-seed 1 --output audits/

The checks are `lm_eval_tasks.audit`'s (each family plugs in its own checker, see
docs/audit.md); this command passes finetune's own unit maker, so the learnability check
cuts documents exactly as training does, and writes
OUTPUT/<family>[-<option>-<value>...]-seed<N>.md and .json (OUTPUT defaults to ./audits).
The exit status is 0 when every check passed, 1 when some failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

from icl_ft_common.config import ConfigError, check_fields, setting, values_from_namespace


@dataclasses.dataclass
class AuditCommand:
    family: str = setting("", "task family: reversal, syllogism, reversal_curse, semantic or process", positional=True)
    data_seed: int = setting(0, "seed of the family's data generator", old_names=("seed",))
    family_options: dict = setting(
        {}, "data option of the family, e.g. preset=paper", pairs=True, flag="--family-option", old_names=("option",)
    )
    output: str = setting("audits", "directory of the card's .md and .json", old_names=("out",))

    def __post_init__(self) -> None:
        check_fields(self)


def finetune_units(texts: list[str], unit: str) -> list[tuple[str, str]]:
    """(context, target) of every training unit `finetune --unit UNIT` makes from `texts`."""
    from finetune.data import make_units

    return [(u.context, u.target) for u in make_units([("family", text) for text in texts], unit)]


def card_stem(family: str, options: dict[str, str], seed: int) -> str:
    """The card's file name without suffix: the family, its options and the seed."""
    parts = [family, *(f"{name}-{value}" for name, value in sorted(options.items())), f"seed{seed}"]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "-".join(parts))


def run_cli(args: argparse.Namespace) -> int:
    from icl_ft_common.io import json_text, write_text_atomic
    from lm_eval_tasks.api import generate_family
    from lm_eval_tasks.audit import audit_data, render_markdown

    try:
        values, _ = values_from_namespace(AuditCommand, args, "icl-ft audit")
        cfg = AuditCommand(**values)
        data = generate_family(cfg.family, cfg.data_seed, **cfg.family_options)
    except (ConfigError, ValueError) as err:  # DataError, UnknownFamilyError are ValueErrors
        print(f"icl-ft: error: {err}", file=sys.stderr)
        return 2
    card = audit_data(data, finetune_units)
    markdown = render_markdown(card)
    print(markdown, end="")
    stem = Path(cfg.output) / card_stem(cfg.family, cfg.family_options, cfg.data_seed)
    try:
        write_text_atomic(f"{stem}.md", markdown)  # not with_suffix: values may hold dots
        write_text_atomic(f"{stem}.json", json_text(card))
    except OSError as err:
        print(f"icl-ft: error: cannot write {stem}.md ({err.strerror}); pass a writable --output", file=sys.stderr)
        return 2
    print(f"\ncard: {stem}.md, {stem}.json", file=sys.stderr)
    return 0 if card["passed"] else 1
