"""`python -m augment`: augmented finetuning data from a model's in-context inferences.

    python -m augment --mode local --family reversal --limit 4 --output /tmp/reversal-local.jsonl
    python -m augment --mode global --family reversal --context facts --limit 4
    python -m augment --mode oracle --family reversal       # the symbolic upper-bound control
    python -m augment --config augment.yaml --temperature 0.7 --num-samples 2

Every flag is a field of augment.config.AugmentConfig (`--help` lists them with their defaults);
the run itself is `augment.run(config)` (augment/runner.py).
"""

from __future__ import annotations

import logging
import sys

from augment.config import AugmentConfig, ConfigError

PROG = "python -m augment"


def build_parser():
    from icl_ft_common.config import build_parser as build

    parser = build(
        AugmentConfig,
        PROG,
        "Write augmented finetuning data: a model's in-context rephrasings, reversals and inferences about a "
        "task family's training facts (or the generator's oracle statements).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return parser


def config_from_args(argv: list[str] | None = None) -> tuple[AugmentConfig, dict]:
    """(config, other flags such as `verbose`): `--config` YAML first, flags over it. Raises ConfigError."""
    from icl_ft_common.config import parse_config

    return parse_config(AugmentConfig, build_parser(), argv)


def cli(argv: list[str] | None = None) -> int:
    import augment
    from augment.backends import BackendError
    from augment.io import OutputError

    try:
        cfg, extras = config_from_args(argv)
    except ConfigError as err:
        print(f"augment: error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if extras.get("verbose") else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        summary = augment.run(cfg)
    except (ValueError, OSError, OutputError, BackendError) as err:
        print(f"augment: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"augment: interrupted; rerun the same command to resume from {cfg.output_path}.partial", file=sys.stderr)
        return 130
    dropped = ", ".join(f"{reason} {n}" for reason, n in summary["dropped_by_reason"].items() if n)
    print(
        f"{summary['output']}: {summary['kept']} rows kept of {summary['sentences']} sentences "
        f"from {summary['items']} items" + (f" (dropped: {dropped})" if dropped else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
