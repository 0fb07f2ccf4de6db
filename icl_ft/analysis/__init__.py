"""`icl-ft compare`: accuracy tables, paired tests, phrasing consistency and a figure from
lm-eval output (a study RUN_DIR or results dirs made by hand).

    >>> from icl_ft.analysis import compare
    >>> result = compare([Path("runs/base"), Path("runs/adapter")], out=Path("compare"))
    >>> print(result.table)          # condition x split, accuracy [95% interval]

Modules: `loading` (files -> tidy samples), `stats` (pure statistics), `summary` (grouping),
`report` (text, markdown, figure), `models` (a study of several models: per model, gaps side by side).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from icl_ft.analysis.loading import CompareError, is_models_dir, is_study_dir, load_runs

__all__ = ["CompareError", "CompareResult", "compare", "default_out"]


@dataclasses.dataclass(frozen=True)
class CompareResult:
    table: str
    report: Path
    figure: Path


def default_out(paths: list[Path]) -> Path:
    """A study's report goes next to its cells; anything else to ./compare."""
    if len(paths) == 1 and paths[0].is_dir() and (is_study_dir(paths[0]) or is_models_dir(paths[0])):
        return paths[0]
    return Path("compare")


def compare(paths: list[Path], out: Path | None = None) -> CompareResult:
    """Read every run under `paths`, write `report.md` and `figure.png` into `out`. Raises
    CompareError (one line, naming the file and the fix) on bad input, before writing."""
    from icl_ft.analysis.report import figure, markdown_report, text_table, write_text
    from icl_ft.analysis.summary import summarize

    out = default_out(paths) if out is None else out
    if any(p.is_dir() and is_models_dir(p) for p in paths):
        if len(paths) != 1:
            raise CompareError("a study of several models is compared on its own: icl-ft compare RUN_DIR")
        return _compare_models(paths[0], out)
    loaded = load_runs(paths)
    if not loaded.samples:
        raise CompareError(
            f"{', '.join(map(str, paths))}: no finished runs to compare; every cell is failed or running"
        )
    summary = summarize(loaded)
    report_path, figure_path = out / "report.md", out / "figure.png"
    write_text(report_path, markdown_report(summary, loaded, [str(p) for p in paths]))
    figure(summary, figure_path)
    return CompareResult(text_table(summary), report_path, figure_path)


def _compare_models(run_dir: Path, out: Path) -> CompareResult:
    from icl_ft.analysis import models
    from icl_ft.analysis.report import write_text

    summaries = models.load_models(run_dir)
    report_path, figure_path = out / "report.md", out / "figure.png"
    write_text(report_path, models.markdown(summaries, run_dir))
    models.figure(summaries, figure_path)
    return CompareResult(models.text_tables(summaries), report_path, figure_path)
