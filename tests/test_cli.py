from __future__ import annotations

import json
import subprocess
import sys

from icl_ft import cli
from lm_eval_tasks import TASKS_DIR


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from icl_ft.cli import build_parser; build_parser().format_help();"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'datasets', 'lm_eval'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_tasks_dir_prints_the_task_directory(capsys):
    assert cli.main(["tasks-dir"]) == 0
    assert capsys.readouterr().out.strip() == str(TASKS_DIR)


def test_data_prints_json_rows(capsys):
    assert cli.main(["data", "reversal", "--split", "reverse", "--head", "2", "--family-option", "num_facts=4"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and {"query", "choices", "label"} <= rows[0].keys()


def test_data_bad_input_is_a_one_line_error(capsys):
    for argv in (
        ["data", "nonexistent"],
        ["data", "reversal", "--split", "nope"],
        ["data", "reversal", "--family-option", "num_facts"],
        ["data", "reversal", "--family-option", "num_facts=3"],
    ):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("icl-ft: error:") and err.count("\n") == 1, (argv, err)


def test_data_seed_is_spelled_alike_everywhere_and_the_old_flag_still_works(capsys):
    assert cli.main(["data", "reversal", "--data-seed", "3", "--head", "2", "--family-option", "num_facts=4"]) == 0
    new = capsys.readouterr()
    assert cli.main(["data", "reversal", "--seed", "3", "--head", "2", "--option", "num_facts=4"]) == 0
    old = capsys.readouterr()
    assert old.out == new.out and new.err == ""
    assert old.err.splitlines() == [
        "icl-ft data: warning: --seed is deprecated; use --data-seed",
        "icl-ft data: warning: --option is deprecated; use --family-option",
    ]
    assert cli.main(["data", "reversal", "--data-seed", "4", "--head", "2", "--family-option", "num_facts=4"]) == 0
    assert capsys.readouterr().out != new.out  # another data seed, other data
