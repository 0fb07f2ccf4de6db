"""Command line of `icl-ft study` (also `python -m icl_ft.study`).

    icl-ft study --model $(icl-ft model path) \\
        --tasks icl_ft_reversal,icl_ft_syllogism,icl_ft_reversal_curse,icl_ft_semantic --output runs/study-small

Every flag is a field of icl_ft.study.config.StudyConfig (`--help` lists them with their defaults).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

PROG = "icl-ft study"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from icl_ft.study.config import StudyConfig
    from icl_ft_common.config import add_arguments as add_config_arguments

    add_config_arguments(parser, StudyConfig, PROG)


def _quiet_libraries() -> None:
    progress = logging.getLogger("icl_ft.study")
    if not progress.handlers:  # progress lines go to stderr whatever the global log level
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s study: %(message)s", "%H:%M:%S"))
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)
        progress.propagate = False
    from icl_ft.study.runner import quiet_libraries

    quiet_libraries()


def _executor(cfg):
    """None (the serial executor) or the Ray executor; Ray is imported only for --executor ray."""
    from icl_ft.study import StudyError

    if cfg.executor != "ray":
        if cfg.ray_address:
            raise StudyError(f"--ray-address {cfg.ray_address} needs --executor ray; add it, or drop --ray-address")
        return None
    from icl_ft.study.ray_executor import require_ray
    from icl_ft.study.runner import RayExecutor

    if cfg.max_retries < 0:
        raise StudyError(f"--max-retries {cfg.max_retries} must be >= 0 (attempts after the first)")
    require_ray()  # before any work: a missing extra is a one-line error
    return RayExecutor(address=cfg.ray_address, max_retries=cfg.max_retries, threads=cfg.threads or 1)


def run_cli(args: argparse.Namespace) -> int:
    from icl_ft.study import StudyError
    from icl_ft.study.config import StudyConfig
    from icl_ft.study.plan import build_plans
    from icl_ft.study.ray_executor import ExecutorError  # the module imports Ray only when it runs
    from icl_ft.study.runner import run_study
    from icl_ft_common.config import ConfigError, values_from_namespace

    started = time.monotonic()
    cfg = None
    try:
        values, _ = values_from_namespace(StudyConfig, args, PROG)
        cfg = StudyConfig(**values)
        missing = [f"--{name}" for name in ("model", "tasks", "output") if not getattr(cfg, name)]
        if missing:
            raise StudyError(
                f"{', '.join(missing)} required; e.g. icl-ft study --model $(icl-ft model path) "
                "--tasks icl_ft_reversal --output runs/study"
            )
        plans = build_plans(cfg)
        if cfg.dry_run:
            from icl_ft.study.dry_run import describe_plan

            print(describe_plan(plans, cfg.output))
            return 0
        executor = _executor(cfg)
        _quiet_libraries()
        outcome = run_study(plans, cfg.output, executor=executor)
    except (ConfigError, StudyError, ExecutorError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume {cfg.output if cfg else ''}", file=sys.stderr)
        return 130
    seconds = {kind: round(s) for kind, s in outcome.seconds_by_kind.items()}
    print(
        f"study {outcome.run_dir}: {len(outcome.done)} steps run, {len(outcome.skipped)} already done, "
        f"{len(outcome.failed)} failed; {time.monotonic() - started:.0f}s (by kind: {seconds})"
    )
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
