"""`icl-ft compare` on a study of several models: a table and report section per model, the
ICL-minus-FT and augmented-minus-FT gaps of every model side by side, and a figure with one
panel per model. Each model is analysed on its own (its paired tests pair conditions within
that model); only the gaps are put next to each other.

    >>> from icl_ft.analysis.models import compare_models
    >>> result = compare_models(Path("runs/two-models"), out=Path("runs/two-models"))
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from icl_ft.analysis.loading import CompareError, Loaded, load_runs
from icl_ft.analysis.summary import Summary, condition_order, summarize
from icl_ft.conditions import AUGMENT_MODE

GAP_NOTE = "accuracy difference in points of accuracy (mean over training seeds), per split and on average"


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    model_id: str
    model: str | None  # the model directory, as study's models.json records it
    loaded: Loaded
    summary: Summary


def load_models(run_dir: Path) -> list[ModelSummary]:
    """Every model of a study RUN_DIR of several models that has finished cells."""
    from icl_ft.study import StudyError
    from icl_ft.study.cells import study_models

    try:
        models = study_models(run_dir)
    except StudyError as err:
        raise CompareError(str(err)) from None
    found = []
    for model_id, model, root in models:
        if not root.is_dir():
            continue  # listed, but no step of it ran yet
        loaded = load_runs([root])
        if loaded.samples:
            found.append(ModelSummary(model_id, model, loaded, summarize(loaded)))
    if not found:
        raise CompareError(f"{run_dir}: no model of this study has a finished cell yet; run `icl-ft study` first")
    return found


def gap_conditions(summaries: list[ModelSummary]) -> list[str]:
    """`icl` and the augmented conditions (each compared with `ft`) that some model has."""
    present = {c for m in summaries for c in m.summary.conditions}
    if "ft" not in present:
        return []
    wanted = [c for c in present if c == "icl" or AUGMENT_MODE.get(c)]
    return sorted(wanted, key=condition_order)


def gap(summary: Summary, condition: str, family: str, split: str) -> float | None:
    cell, ft = summary.cell(condition, family, split), summary.cell("ft", family, split)
    return None if cell is None or ft is None else cell.acc - ft.acc


def gap_rows(summaries: list[ModelSummary]) -> tuple[list[str], list[list[str]]]:
    """Rows `<condition> - ft` per split (and averaged over splits), a column per model."""
    header = ["gap", "split", *(m.model_id for m in summaries)]
    splits = sorted({fs for m in summaries for fs in m.summary.splits})
    rows = []
    for condition in gap_conditions(summaries):
        for family, split in [*splits, ("mean", "")]:
            values = []
            for m in summaries:
                if family == "mean":
                    gaps = [g for fs in m.summary.splits if (g := gap(m.summary, condition, *fs)) is not None]
                    values.append(sum(gaps) / len(gaps) if gaps else None)
                else:
                    values.append(gap(m.summary, condition, family, split))
            name = f"{family}/{split}" if split else "mean over splits"
            rows.append([f"{condition} - ft", name, *(_signed(v) for v in values)])
    return header, rows


def _signed(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:+.2f}"


def text_tables(summaries: list[ModelSummary]) -> str:
    from icl_ft.analysis.report import text_table

    parts = [f"model {m.model_id} ({m.model})\n{text_table(m.summary)}" for m in summaries]
    header, rows = gap_rows(summaries)
    if rows:
        parts.append(f"gaps ({GAP_NOTE})\n{_text_grid(header, rows)}")
    return "\n\n".join(parts)


def _text_grid(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(summaries: list[ModelSummary], run_dir: Path) -> str:
    """The gaps side by side, then each model's own report (its headings one level down)."""
    from icl_ft.analysis.report import _md_table, markdown_report

    lines = [f"# icl-ft compare: {len(summaries)} models", "", f"Source: `{run_dir}`", ""]
    lines += ["| model id | model |", "|---|---|", *(f"| {m.model_id} | `{m.model}` |" for m in summaries), ""]
    header, rows = gap_rows(summaries)
    if rows:
        lines += [
            "## Gaps per model",
            "",
            f"Each condition minus `ft`, {GAP_NOTE}. Paired tests: each model's "
            "section (conditions are paired within a model only).",
            "",
            *_md_table(header, rows),
            "",
        ]
    for m in summaries:
        report = markdown_report(m.summary, m.loaded, [str(run_dir / "models" / m.model_id)])
        body = report.split("\n", 1)[1]  # without its title
        lines += [f"## Model {m.model_id}", ""]
        lines += [f"#{line}" if line.startswith("#") else line for line in body.splitlines()]
        lines.append("")
    return "\n".join(lines) + "\n"


def figure(summaries: list[ModelSummary], path: Path) -> None:
    """One panel per model: a group of bars per family/split, one bar per condition, 95% intervals,
    the dashed chance line; the same colours and y axis in every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from icl_ft_common.io import atomic_write

    conditions = sorted({c for m in summaries for c in m.summary.conditions}, key=condition_order)
    colours = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(conditions)}
    splits = sorted({fs for m in summaries for fs in m.summary.splits})
    fig, axes = plt.subplots(
        1, len(summaries), figsize=(max(4.0, (1.2 * len(splits) + 1) * len(summaries)), 3.8), squeeze=False, sharey=True
    )
    width = 0.8 / len(conditions)
    for ax, m in zip(axes[0], summaries):
        for x, (family, split) in enumerate(splits):
            present = [c for c in conditions if m.summary.cell(c, family, split)]
            for i, condition in enumerate(present):
                cell = m.summary.cell(condition, family, split)
                low, high = cell.interval
                pos = x - 0.4 + width / 2 + i * width
                ax.bar(pos, cell.acc, width * 0.92, color=colours[condition])
                ax.errorbar(pos, cell.acc, yerr=[[cell.acc - low], [high - cell.acc]], color="black", capsize=2, lw=1)
            if present:
                chance = max(m.summary.cell(c, family, split).chance for c in present)
                ax.hlines(chance, x - 0.45, x + 0.45, colors="grey", linestyles="dashed", lw=1)
        ax.set_xticks(range(len(splits)), [f"{f}\n{s}".replace("_", " ") for f, s in splits], fontsize=8)
        ax.set_title(m.model_id, fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].set_ylabel("Accuracy")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[c]) for c in conditions]
    handles.append(plt.Line2D([], [], color="grey", linestyle="dashed"))
    fig.legend(handles, [*conditions, "chance"], loc="upper center", ncol=min(len(conditions) + 1, 7), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    atomic_write(path, lambda temporary: fig.savefig(temporary, dpi=150, format="png"))
    plt.close(fig)
