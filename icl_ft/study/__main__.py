"""Command line of `icl-ft study` (also `python -m icl_ft.study`).

    icl-ft study --model $(icl-ft model path) --tasks icl_ft_reversal,icl_ft_syllogism,icl_ft_reversal_curse,icl_ft_semantic \\
        --out runs/study-small
"""

from __future__ import annotations

import argparse
import logging
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from icl_ft.study.plan import CONDITIONS, DEFAULT_CONDITIONS

    parser.add_argument("--model", required=True, help="base model: a Hugging Face model directory")
    parser.add_argument(
        "--tasks",
        required=True,
        help="comma-separated task groups, e.g. icl_ft_reversal,icl_ft_semantic",
    )
    parser.add_argument("--out", required=True, help="run directory; rerun the same command to resume")
    parser.add_argument("--preset", default="small", help="small (CPU, default) or paper (GPU scale)")
    parser.add_argument("--seeds", default="0", help="finetuning seeds, comma-separated, e.g. 1,2,3")
    parser.add_argument(
        "--conditions", default=None, help=f"subset of {','.join(CONDITIONS)} [default: {','.join(DEFAULT_CONDITIONS)}]"
    )
    parser.add_argument("--oracle", action="store_true", help="add ft_oracle (FT + the generator's oracle statements)")
    parser.add_argument("--limit", type=int, default=None, help="test items per split (overrides the preset)")
    parser.add_argument("--steps", type=int, default=None, help="finetuning steps per adapter (overrides the preset)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0 = the preset's; small: 1, paper: one per core)"
    )


def run_cli(args: argparse.Namespace) -> int:
    from icl_ft.study import StudyError
    from icl_ft.study.plan import build_plan
    from icl_ft.study.runner import run_study

    progress = logging.getLogger("icl_ft.study")
    if not progress.handlers:  # progress lines go to stderr whatever the global log level
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s study: %(message)s", "%H:%M:%S"))
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)
        progress.propagate = False
    # lm-eval, transformers and datasets log every request batch and file; keep their warnings only.
    for noisy in ("transformers", "peft", "accelerate", "datasets", "httpx", "augment", "finetune"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # a warning per task about --metadata hints
    started = time.monotonic()
    try:
        plan = build_plan(
            args.model, args.tasks, preset=args.preset, seeds=args.seeds, conditions=args.conditions,
            oracle=args.oracle, limit=args.limit, steps=args.steps, threads=args.threads,
        )  # fmt: skip
        outcome = run_study(plan, args.out)
    except StudyError as err:
        print(f"icl-ft study: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"icl-ft study: interrupted; rerun the same command to resume {args.out}", file=sys.stderr)
        return 130
    seconds = {kind: round(s) for kind, s in outcome.seconds_by_kind.items()}
    print(f"study {outcome.run_dir}: {len(outcome.done)} steps run, {len(outcome.skipped)} already done, "
          f"{len(outcome.failed)} failed; {time.monotonic() - started:.0f}s (by kind: {seconds})")  # fmt: skip
    for label, error in outcome.failed.items():
        print(f"  FAILED {label}: {error}")
    _print_analysis(outcome.run_dir)
    return 1 if outcome.failed else 0


def _print_analysis(run_dir) -> None:
    """`icl-ft compare RUN_DIR`'s table, report and figure; the plain table if it cannot run."""
    from icl_ft.analysis import CompareError, compare
    from icl_ft.study.runner import accuracy_table

    try:
        result = compare([run_dir])
    except CompareError as err:
        print(accuracy_table(run_dir))
        print(f"icl-ft compare {run_dir} could not analyse this run: {err}")
        return
    print(result.table)
    print(f"\nreport: {result.report}\nfigure: {result.figure}  (again: icl-ft compare {run_dir})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icl_ft.study", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
