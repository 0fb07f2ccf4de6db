"""icl_ft_common: the one config mechanism and the atomic writers / tolerant reader, without any model."""

from __future__ import annotations

import dataclasses
import json

import pytest

from icl_ft_common import artifacts
from icl_ft_common.config import (
    ConfigError,
    build_parser,
    check_fields,
    check_values,
    parse_bool,
    parse_config,
    setting,
)
from icl_ft_common.io import atomic_write, read_jsonl_rows, write_json_atomic, write_jsonl_atomic


@dataclasses.dataclass
class Toy:
    name: str = setting("", "a name (required)")
    steps: int | None = setting(None, "exact steps")
    rate: float = setting(0.5, "a rate")
    mode: str = setting("fast", "how", choices=("fast", "slow"))
    files: list[str] = setting([], "comma-separated files")
    seeds: list[int] = setting([0], "seeds", old_names=("seed_list",))
    options: dict = setting({}, "NAME=VALUE options", pairs=True, flag="--option")
    extra: dict = setting({}, "a JSON object")
    resume: bool = setting(False, "resume")
    cache: bool = setting(True, "use the cache")
    train_seed: int = setting(0, "training seed", old_names=("seed",))

    def __post_init__(self):
        check_fields(self)


def parse(argv, tmp_path=None, yaml_text=None):
    if yaml_text is not None:
        (tmp_path / "c.yaml").write_text(yaml_text)
        argv = ["--config", str(tmp_path / "c.yaml"), *argv]
    return parse_config(Toy, build_parser(Toy, "toy", "a toy command"), argv)[0]


def test_every_field_is_a_flag_of_its_type():
    cfg = parse(
        [
            "--name",
            "x",
            "--steps",
            "3",
            "--rate",
            "1",
            "--mode",
            "slow",
            "--files",
            "a.jsonl, b.jsonl",
            "--seeds",
            "1,2",
            "--option",
            "a=1",
            "--option",
            "b=x=y",
            "--extra",
            '{"k": [1]}',
            "--resume",
            "--no-cache",
            "--train-seed",
            "7",
        ]
    )
    assert cfg == Toy(
        "x", 3, 1.0, "slow", ["a.jsonl", "b.jsonl"], [1, 2], {"a": "1", "b": "x=y"}, {"k": [1]}, True, False, 7
    )
    assert parse(["--steps", "none"]).steps is None


def test_help_shows_defaults_choices_and_no_deprecated_flag():
    text = " ".join(build_parser(Toy, "toy", "a toy command").format_help().split())
    assert "a rate [default: 0.5]" in text and "seeds [default: 0]" in text and "use the cache [default: True]" in text
    assert "--mode {fast,slow}" in text and "--option NAME=VALUE" in text and "(repeatable)" in text
    assert "--cache, --no-cache" in text and "--seed " not in text and "--seed-list" not in text


def test_yaml_gives_defaults_flags_override_and_pairs_merge(tmp_path):
    cfg = parse(["--rate", "0.25", "--option", "b=2"], tmp_path, "name: y\nrate: 2\nsteps: 4\noptions: {a: 1, b: 1}\n")
    assert (cfg.name, cfg.rate, cfg.steps, cfg.options) == ("y", 0.25, 4, {"a": 1, "b": "2"})


@pytest.mark.parametrize(
    ("argv", "yaml_text", "message"),
    [
        ([], "nmae: y\n", r"config='.*c.yaml' has unknown key\(s\) \['nmae'\]; valid keys: \[.*'name'"),
        ([], "- a list\n", r"must be a mapping of setting: value, not list"),
        ([], "name: [unclosed\n", r"is not valid YAML \(line 2\)"),
        ([], "rate: fast\n", r"config='.*c.yaml': rate='fast' is not valid; expected float"),
        (["--steps", "2.5"], None, r"steps='2.5' is not valid; expected int or nothing"),
        (["--mode", "medium"], None, r"mode='medium' is not valid; choose one of \['fast', 'slow'\]"),
        (["--seeds", "1,x"], None, r"seeds='1,x' is not valid; expected a list of int"),
        (["--option", "novalue"], None, r"--option 'novalue': expected NAME=VALUE"),
        (["--extra", "[1]"], None, r"extra='\[1\]' is not valid; expected a JSON object"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_setting(tmp_path, argv, yaml_text, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse(argv, tmp_path, yaml_text)
    assert "\n" not in str(error.value)


def test_old_names_work_as_flags_and_keys_with_one_line_each(tmp_path, capsys):
    cfg = parse(["--seed", "3", "--resume", "false", "--cache", "yes"], tmp_path, "seed_list: [4, 5]\n")
    assert (cfg.train_seed, cfg.seeds, cfg.resume, cfg.cache) == (3, [4, 5], False, True)
    assert capsys.readouterr().err.splitlines() == [
        "toy: warning: --resume false is deprecated; use --no-resume",
        "toy: warning: --cache yes is deprecated; use --cache",
        "toy: warning: --seed is deprecated; use --train-seed",
        "toy: warning: config='" + str(tmp_path / "c.yaml") + "' key 'seed_list' is deprecated; use 'seeds'",
    ]


def test_values_given_in_python_must_have_the_declared_type():
    with pytest.raises(ConfigError, match=r"steps='3' is not valid; expected int or nothing"):
        Toy(steps="3")
    with pytest.raises(ConfigError, match=r"steps=True is not valid"):
        Toy(steps=True)  # a bool is not an int here
    with pytest.raises(ConfigError, match=r"seeds=\[1, '2'\] is not valid; expected a list of int"):
        Toy(seeds=[1, "2"])
    assert Toy(rate=1).rate == 1.0 and isinstance(Toy(rate=1).rate, float)


def test_check_values_types_a_mapping_and_rejects_unknown_names():
    assert check_values(Toy, {"rate": "0.1", "resume": "on", "files": ["a"]}, where="preset") == {
        "rate": 0.1,
        "resume": True,
        "files": ["a"],
    }
    with pytest.raises(ConfigError, match=r"preset has unknown key\(s\) \['rat'\]"):
        check_values(Toy, {"rat": 1}, where="preset")


def test_parse_bool():
    assert [parse_bool(v) for v in ("yes", "ON", "1", "false", "No", 0 == 1)] == [True, True, True, False, False, False]
    with pytest.raises(ValueError, match="expected true or false"):
        parse_bool("maybe")


# --- io ------------------------------------------------------------------------------------------


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "deep" / "dir" / "report.json"
    write_json_atomic(target, {"b": 1, "a": "é"}, sort_keys=True)
    assert target.read_text(encoding="utf-8") == '{\n  "a": "é",\n  "b": 1\n}\n'

    def fail_halfway(temporary):
        temporary.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail_halfway)
    assert json.loads(target.read_text()) == {"a": "é", "b": 1}  # the old file survives
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]  # no temporary file left
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_tolerant_jsonl_reader_skips_and_counts(tmp_path):
    path = tmp_path / "rows.jsonl"
    write_jsonl_atomic(path, [{"text": "one\u2028line"}, {"text": ""}, ["x"], {"text": "two", "id": 2}])
    with open(path, "a") as handle:
        handle.write("\n{broken\n")
    read = read_jsonl_rows(path, required=("text",))
    assert [row["text"] for row in read.rows] == ["one\u2028line", "two"]  # U+2028 inside a row does not split it
    assert read.skipped == 3 and read.first_problem == 'line 2: needs a non-empty string "text"'
    assert read.describe_skipped(path).endswith(
        'skipped 3 malformed row(s) (first at line 2: needs a non-empty string "text")'
    )


def test_artifact_names():
    output = artifacts.Path("augment") / "reversal-local.jsonl"
    assert artifacts.summary_path(output).name == "reversal-local.summary.json"
    assert artifacts.dropped_path(output).name == "reversal-local.dropped.jsonl"
    assert artifacts.partial_path(output).name == "reversal-local.jsonl.partial"
