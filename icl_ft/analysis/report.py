"""Render a `Summary`: the stdout table, `report.md` and `figure.png` (written atomically)."""

from __future__ import annotations

from pathlib import Path

from icl_ft.analysis.loading import Loaded
from icl_ft.analysis.summary import Cell, Summary, condition_order, fmt
from icl_ft_common.io import atomic_write, write_text_atomic

INTERVAL_NOTE = "95% Wilson score intervals over items"


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "–"
    low, high = cell.interval
    marker = "*" if cell.spread else ""
    return f"{cell.acc:.2f} [{low:.2f}, {high:.2f}]{marker}"


def _n_text(cells: list[Cell]) -> str:
    ns = sorted({c.items_per_run for c in cells})
    return str(ns[0]) if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"


def _grid(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """Condition x split: accuracy [95% interval], then the chance and n rows."""
    header = ["condition", *(f"{family}/{split}" for family, split in summary.splits)]
    rows = [
        [condition, *(_cell_text(summary.cell(condition, *fs)) for fs in summary.splits)]
        for condition in summary.conditions
    ]
    per_split = [[c for c in summary.cells if (c.family, c.split) == fs] for fs in summary.splits]
    rows.append(["chance", *(fmt(max(c.chance for c in cells)) for cells in per_split)])
    rows.append(["n items", *(_n_text(cells) for cells in per_split)])  # per run: pooled n is in the details
    return header, rows


def text_table(summary: Summary) -> str:
    header, rows = _grid(summary)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    footer = f"accuracy ({INTERVAL_NOTE})"
    if any(c.spread for c in summary.cells):
        footer += "; * mean over seeds, interval at one run's items, per-seed spread in report.md"
    return "\n".join([*lines, footer])


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    escape = [[str(cell).replace("|", "\\|") for cell in row] for row in [header, *rows]]
    return [
        "| " + " | ".join(escape[0]) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in escape[1:]),
    ]


def _seeds_text(cell: Cell) -> str:
    if not cell.spread:
        (seeds,) = cell.runs
        return seeds.describe()
    s = cell.spread
    runs = "; ".join(seeds.describe() for seeds in cell.runs)
    return f"{len(s.values)} seeds ({runs}): mean {s.mean:.2f}, range {s.low:.2f}–{s.high:.2f}, sd {s.sd:.2f}"


def _seed(value: int | None) -> str:
    return "–" if value is None else str(value)


def markdown_report(summary: Summary, loaded: Loaded, sources: list[str]) -> str:
    lines = ["# icl-ft compare", "", "Sources: " + ", ".join(f"`{s}`" for s in sources), ""]
    limits = sorted({r.limit for r in loaded.runs if r.limit})
    if limits:
        lines += [
            f"> Scored with lm_eval `--limit` ({', '.join(fmt(v, 0) for v in limits)}): not the full test splits.",
            "",
        ]

    header, rows = _grid(summary)
    lines += ["## Accuracy", "", f"Accuracy from the per-item `acc` of lm-eval's samples, {INTERVAL_NOTE}. "]
    lines[-1] += (
        "Chance is the mean over items of 1 / number of choices. * = mean over several seeds; its interval uses one "
        "run's number of items (runs scoring the same items add none), and the dots in the figure are the runs."
    )
    lines += ["", *_md_table(header, rows), ""]

    lines += ["### Per condition and split", ""]
    detail = [
        [
            c.family,
            c.split,
            c.condition,
            str(c.items_per_run),
            fmt(c.acc, 3),
            f"{fmt(c.interval[0], 3)}–{fmt(c.interval[1], 3)}",
            fmt(c.acc_norm, 3),
            fmt(c.chance, 3),
            _seeds_text(c),
        ]
        for c in summary.cells
    ]
    lines += _md_table(
        ["family", "split", "condition", "n items", "acc", "95% CI", "acc_norm", "chance", "seeds"], detail
    )

    lines += ["", "## Paired tests (exact McNemar)", ""]
    if summary.pairs:
        lines += [
            (
                "Items joined on lm-eval's `doc_hash` (the same doc under the `_icl` and `_ft` task of a split). "
                "Two-sided exact binomial test on the discordant items (correct under one condition only)."
            ),
            "",
        ]
        pair_rows = [
            [
                p.family,
                p.split,
                p.a,
                p.b,
                _seed(p.seeds.data_seed),
                _seed(p.seeds.train_seed),
                str(p.test.n),
                fmt(p.test.acc_a, 3),
                fmt(p.test.acc_b, 3),
                str(p.test.only_a),
                str(p.test.only_b),
                f"{p.test.p_value:.3g}",
            ]
            for p in summary.pairs
        ]
        lines += _md_table(
            [
                "family",
                "split",
                "A",
                "B",
                "data seed",
                "train seed",
                "n paired",
                "acc A",
                "acc B",
                "only A",
                "only B",
                "p",
            ],
            pair_rows,
        )
    else:
        lines += ["No two conditions scored the same items."]
    if loaded.join_mismatches:
        lines += [
            "",
            f"{loaded.join_mismatches} docs shared a doc id but not their query/choices and were left unpaired.",
        ]

    lines += ["", "## Consistency across phrasings", ""]
    if summary.consistency:
        lines += [
            (
                "Items asked in several phrasings (docs sharing an `item_id`; items with one phrasing scored are "
                "skipped): fraction with every phrasing correct, and fraction whose phrasings agree (all right or "
                "all wrong)."
            ),
            "",
        ]
        cons_rows = [
            [family, split, condition, str(c.items), fmt(c.all_correct, 3), fmt(c.agree, 3)]
            for (condition, family, split), c in sorted(
                summary.consistency.items(), key=lambda kv: (kv[0][1], kv[0][2], condition_order(kv[0][0]))
            )
        ]
        lines += _md_table(["family", "split", "condition", "items", "all correct", "agree"], cons_rows)
    else:
        lines += ["No task in these runs provides several phrasings of an item."]

    lines += ["", "## Missing cells", ""]
    if loaded.missing:
        missing_rows = [
            [m.cell, m.condition, m.family, _seed(m.train_seed), m.status, m.error or ""] for m in loaded.missing
        ]
        lines += _md_table(["cell", "condition", "family", "train seed", "status", "error"], missing_rows)
    else:
        lines += ["None."]

    lines += ["", "## Provenance", ""]
    prov_rows = [
        [
            r.cell or "",
            ", ".join(r.conditions),
            r.model,
            r.adapter or "–",
            _seed(r.data_seed),
            _seed(r.train_seed),
            fmt(r.limit, 0) if r.limit else "–",
            r.lm_eval_version,
            r.transformers_version,
            ", ".join(f"{t} v{v}" for t, v in r.tasks.items()),
            f"`{r.results_file}`",
        ]
        for r in loaded.runs
    ]
    lines += _md_table(
        [
            "cell",
            "conditions",
            "model",
            "adapter",
            "data seed",
            "train seed",
            "limit",
            "lm-eval",
            "transformers",
            "tasks",
            "results file",
        ],
        prov_rows,
    )
    return "\n".join(lines) + "\n"


def figure(summary: Summary, path: Path) -> None:
    """Grouped bars like the paper's: one panel per family, a group per split, one bar per
    condition, 95% interval error bars, per-seed dots, a dashed chance line per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = summary.conditions
    colours = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(conditions)}
    families = sorted({f for f, _ in summary.splits})
    splits_of = {f: [s for fam, s in summary.splits if fam == f] for f in families}
    fig, axes = plt.subplots(
        1,
        len(families),
        figsize=(max(4.0, 1.6 * len(summary.splits) + 1.5 * len(families)), 3.6),
        squeeze=False,
        sharey=True,
        width_ratios=[max(1, len(splits_of[f])) for f in families],
    )
    width = 0.8 / len(conditions)
    for ax, family in zip(axes[0], families):
        for x, split in enumerate(splits_of[family]):
            present = [c for c in conditions if summary.cell(c, family, split)]
            offset0 = x - 0.4 + width / 2 + (len(conditions) - len(present)) * width / 2
            for i, condition in enumerate(present):
                cell = summary.cell(condition, family, split)
                low, high = cell.interval
                pos = offset0 + i * width
                ax.bar(pos, cell.acc, width * 0.92, color=colours[condition], label=condition)
                ax.errorbar(pos, cell.acc, yerr=[[cell.acc - low], [high - cell.acc]], color="black", capsize=2, lw=1)
                if cell.spread:
                    ax.scatter([pos] * len(cell.spread.values), cell.spread.values, s=10, color="black", zorder=3)
            chance = max(summary.cell(c, family, split).chance for c in present)
            ax.hlines(chance, x - 0.45, x + 0.45, colors="grey", linestyles="dashed", lw=1)
        ax.set_xticks(range(len(splits_of[family])), [s.replace("_", " ") for s in splits_of[family]])
        ax.set_title(family.replace("_", " "))
        ax.set_ylim(0, 1.02)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].set_ylabel("Accuracy")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[c]) for c in conditions]
    handles.append(plt.Line2D([], [], color="grey", linestyle="dashed"))
    fig.legend(handles, [*conditions, "chance"], loc="upper center", ncol=min(len(conditions) + 1, 7), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    atomic_write(path, lambda temporary: fig.savefig(temporary, dpi=150, format="png"))
    plt.close(fig)


def write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)
