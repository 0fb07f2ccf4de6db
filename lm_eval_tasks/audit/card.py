"""The audit card as markdown (the JSON form is the card dict itself)."""

from __future__ import annotations

from typing import Any


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _fraction(part: int, whole: int) -> str:
    return f"{part}/{whole}" + ("" if part == whole else " **(!)**")


def render_markdown(card: dict[str, Any]) -> str:
    options = ", ".join(f"{k}={v}" for k, v in card["options"].items()) or "defaults"
    verdict = "every check passed" if card["passed"] else "**some checks failed (marked (!) or FAIL)**"
    out = [f"# Dataset card: {card['family']} {card['version']}, seed {card['seed']} ({options})", "", verdict, ""]

    out += ["## Sizes", ""]
    out += _table(["", "this instance", "paper"], [[s["what"], s["ours"], s["paper"] or "-"] for s in card["sizes"]])

    if card["labels"] is not None:
        out += ["", "## Labels (the family's symbolic checker, on the whole training text)", ""]
        out += _table(
            ["split", "exactly the label follows", "first invalid"],
            [
                [split, _fraction(r["valid"], r["rows"]), ", ".join(r["invalid"]) or "-"]
                for split, r in card["labels"].items()
            ],
        )
    else:
        out += ["", "No symbolic checker for this family: labels, coverage and learnability are not checked."]

    context = card["icl_coverage"]["context"]
    out += ["", "## ICL context", ""]
    if context:
        out += [
            (
                f"{context['documents_shown']} of {context['documents_total']} entries ({context['icl_context']}), "
                f"{context['tokens_shown']} of {context['tokens_total']} estimated tokens; "
                f"budget {context['budget_tokens']} "
                f"from {context['budget_source']}."
            ),
            "",
        ]
        out += _table(
            ["split", "items scored (covered by the chosen context)"],
            [[split, _fraction(n["scored"], n["total"])] for split, n in context["items"].items()],
        )
    if card["icl_coverage"].get("splits"):
        out += ["", "Rows the ICL context entails, by the checker:", ""]
        out += _table(
            ["split", "entailed", "first not entailed"],
            [
                [split, _fraction(r["entailed"], r["rows"]), ", ".join(r["not_entailed"]) or "-"]
                for split, r in card["icl_coverage"]["splits"].items()
            ],
        )

    if card["learnability"]:
        learn = card["learnability"]
        units = list(learn)
        out += ["", "## Learnability per finetuning unit (finetune's own splitter)", ""]
        out += _table(
            ["", *units],
            [
                [
                    "training documents that state a fact no single unit of theirs states",
                    *(f"{learn[u]['documents_losing_a_fact']}/{learn[u]['documents']}" for u in units),
                ]
            ]
            + [
                [
                    f"{split} rows whose facts are each stated within one unit",
                    *(
                        _fraction(learn[u]["splits"][split]["entailed"], learn[u]["splits"][split]["rows"])
                        for u in units
                    ),
                ]
                for split in learn[units[0]]["splits"]
            ],
        )

    out += [
        "",
        "## Shortcut heuristics",
        "",
        (
            f"Bound: {card['bound']}. Fact-blind heuristics see the test rows; "
            "fact-aware ones the training text (and, where it differs, the ICL context)."
        ),
        "",
    ]
    by_split: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for result in card["shortcuts"]:
        by_split.setdefault(result["split"], {}).setdefault(result["heuristic"], []).append(result)
    with_icl = any(r["corpus"] == "icl" for r in card["shortcuts"])
    for split, heuristics in by_split.items():
        first = next(iter(heuristics.values()))[0]
        out += [
            (
                f"### {split}: {first['items']} items ({first['rows']} rows), chance {first['chance']:.3f}, "
                f"bound {first['bound']:.3f}"
            ),
            "",
        ]
        rows, notes = [], set()
        for name, results in heuristics.items():
            scores = {r["corpus"]: f"{r['accuracy']:.3f}" for r in results}
            statuses = [r["status"] for r in results]
            status = "FAIL" if "FAIL" in statuses else "permitted" if "permitted" in statuses else "ok"
            notes |= {r["note"] for r in results if r["note"]}
            sees = "training text" if results[0]["fact_aware"] else "test rows"
            score = scores.get("train", scores.get(None, ""))
            rows.append([name, sees, score, *([scores.get("icl", "")] if with_icl else []), status])
        out += _table(["heuristic", "sees", "accuracy", *(["on the ICL context"] if with_icl else []), "status"], rows)
        out += [""] + [f"Permitted: {note}." for note in sorted(notes)] + ([""] if notes else [])

    out += [
        "## `--limit` prefixes",
        "",
        (
            "Largest excess, over every prefix, of a label position, an item kind or an "
            "answer over its share of the split (in items; 1-2 is as balanced as a prefix can be):"
        ),
        "",
    ]
    out += _table(
        ["split", "label", "kind", "answer"],
        [[split, b["label"], b["kind"], b["answer"]] for split, b in card["prefix_balance"].items()],
    )

    out += ["", "## Lexicon", ""]
    lexicon = card["lexicon"]
    if lexicon is None:
        out += ["Not applicable: this family's entities are real-looking names, not nonsense words."]
    else:
        out += [
            (
                f"{lexicon['forms']} nonsense forms (every inflection included); English words: "
                f"{', '.join(lexicon['english']) or 'none'}; one edit from a common English word: "
                f"{', '.join(lexicon['near_english']) or 'none'}."
            )
        ]
    return "\n".join(out) + "\n"
