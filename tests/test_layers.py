"""The layer rule and file-level cycles, checked by the script anyone can run (scripts/import_graph.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
SCRIPT = REPOSITORY / "scripts" / "import_graph.py"


def load_script():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_package_imports_a_layer_above_it_and_no_file_cycle():
    result = load_script().analyse(REPOSITORY)
    assert result["violations"] == []
    assert result["cycles"] == []
    assert result["package_edges"], "no import between our packages found: the script reads nothing"


def test_the_check_catches_an_upward_import_and_a_cycle(tmp_path):
    """A copy of the layout with one upward import and one two-module cycle fails, naming both."""
    graph = load_script()
    for package in graph.LAYERS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "icl_ft" / "cli.py").write_text("def main(): ...\n")
    (tmp_path / "lm_eval_tasks" / "api.py").write_text("def f():\n    from icl_ft.cli import main\n")
    (tmp_path / "augment" / "a.py").write_text("import augment.b\n")
    (tmp_path / "augment" / "b.py").write_text("from augment import a\n")
    (tmp_path / "finetune" / "x.py").write_text("import importlib\nimportlib.import_module('augment.a')\n")
    result = graph.analyse(tmp_path)
    assert [v.split(": ", 1)[1] for v in result["violations"]] == [
        "finetune.x (layer 3) imports augment.a (layer 3)",  # two packages of one layer
        "lm_eval_tasks.api (layer 2) imports icl_ft.cli (layer 4)",  # a lazy import counts
    ]
    assert result["cycles"] == [["augment.a", "augment.b"]]
    run = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 1 and "file-level import cycles: 1" in run.stdout
