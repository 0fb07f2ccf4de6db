"""How many augmented reversal-family rows state something true? (an audit, not a filter)

    python benchmarks/augment_reversal_validity.py augmented/reversal-seed0-local.jsonl ...

For each row in the plain form "X are/is COMPARATIVE than Y" it checks, against the
family generator's facts (data seed 0, default options), that the row restates its fact
("A are more C than B") or states its valid reversal ("B are less C than A"). Rows in
other forms are counted but not judged. The oracle file should score every judged row true.
"""

from __future__ import annotations

import json
import re
import sys

PLAIN = re.compile(r"^(?:the )?(\w+) (?:are|is) (.+?) than (?:the )?(\w+)\W*$")


def main(paths: list[str]) -> int:
    from augment.items import source_items
    from lm_eval_tasks.api import generate_family
    from lm_eval_tasks.reversal.generator import FEATURES

    comparatives = {word: pair for pair in FEATURES for word in pair}

    def triple(text: str):
        match = PLAIN.match(text.lower())
        return match.groups() if match and match.group(2) in comparatives else None

    facts = {item.id: triple(item.text) for item in source_items(generate_family("reversal"))}
    for path in paths:
        rows = [json.loads(line) for line in open(path)]
        judged = true = 0
        for row in rows:
            stated = triple(row["text"])
            if stated is None:
                continue
            subject, comparative, obj = facts[row["source_id"]]
            first, second = comparatives[comparative]
            opposite = second if comparative == first else first
            judged += 1
            true += stated in {(subject, comparative, obj), (obj, opposite, subject)}
        print(
            f"{path}: {len(rows)} rows, {judged} in the plain form 'X are/is COMPARATIVE than Y', {true} of them true"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
