"""The zero-flag integration (icl_ft_lm_eval.pth + icl_ft._lm_eval_hook), in process."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
import warnings

import pytest

from icl_ft import _lm_eval_hook as hook
from lm_eval_tasks import TASKS_DIR

pytestmark = pytest.mark.internals  # relies on lm-eval's internals: `make test-latest` runs it


def fake_manager_module(init):
    module = types.ModuleType("fake_manager")
    module.TaskManager = type("TaskManager", (), {"__init__": init})
    return module


@pytest.fixture
def fresh_warning_state(monkeypatch):
    monkeypatch.setattr(hook, "_warned", False)


def test_interpreter_start_imports_neither_torch_nor_lm_eval():
    heavy = "{'torch', 'lm_eval', 'transformers', 'datasets', 'lm_eval_tasks'}"
    code = f"import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    finders = subprocess.run(
        [sys.executable, "-c", "import sys; print([type(f).__name__ for f in sys.meta_path])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "PatchOnImportFinder" in finders  # the .pth is installed and ran


def test_task_manager_sees_our_tasks_without_include_path():
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_defaults=False)
    assert "icl_ft_reversal_forward_icl" in manager.all_tasks
    assert "icl_ft" in manager.all_groups


def test_a_parent_directory_counts_as_already_indexed(tmp_path):
    assert hook._already_indexed(str(TASKS_DIR.parent), TASKS_DIR)
    assert hook._already_indexed([str(tmp_path), TASKS_DIR], TASKS_DIR)
    assert not hook._already_indexed([str(tmp_path)], TASKS_DIR)
    assert not hook._already_indexed(None, TASKS_DIR)


@pytest.mark.parametrize("given", [str(TASKS_DIR), [str(TASKS_DIR)]])
def test_our_directory_is_never_indexed_twice(given, caplog):
    from lm_eval.tasks import TaskManager

    with caplog.at_level(logging.WARNING):
        manager = TaskManager(include_defaults=False, include_path=given)
    assert "icl_ft_reversal_forward_icl" in manager.all_tasks
    assert "overrides existing task" not in caplog.text
    indexed = manager.include_path if isinstance(manager.include_path, list) else [manager.include_path]
    assert [str(p) for p in indexed].count(str(TASKS_DIR)) <= 1


def test_user_include_path_comes_after_ours_so_it_wins_clashes(tmp_path):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_defaults=False, include_path=str(tmp_path))
    assert manager.include_path == [str(TASKS_DIR), str(tmp_path)]


def test_unexpected_internals_warn_once_and_change_nothing(fresh_warning_state):
    def init_without_include_path(self, verbosity=None):
        pass

    module = fake_manager_module(init_without_include_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hook.patch_task_manager(module)
        hook.patch_task_manager(module)
    assert module.TaskManager.__init__ is init_without_include_path
    assert len([w for w in caught if "icl-ft" in str(w.message)]) == 1


def test_missing_task_manager_warns_and_does_not_raise(fresh_warning_state):
    with pytest.warns(UserWarning, match="TaskManager not found"):
        hook.patch_task_manager(types.ModuleType("empty"))


def test_patch_is_idempotent_and_prepends_our_directory():
    seen = []

    def init(self, verbosity=None, include_path=None, include_defaults=True, metadata=None):
        seen.append(include_path)

    module = fake_manager_module(init)
    hook.patch_task_manager(module)
    patched = module.TaskManager.__init__
    hook.patch_task_manager(module)
    assert module.TaskManager.__init__ is patched
    module.TaskManager()
    module.TaskManager(include_path="/elsewhere")
    assert seen == [[str(TASKS_DIR)], [str(TASKS_DIR), "/elsewhere"]]


def test_native_entry_point_support_disables_the_patch(monkeypatch):
    def init(self, include_path=None):
        pass

    module = fake_manager_module(init)
    monkeypatch.setattr(hook, "inspect_source", lambda m: 'eps = entry_points(group="lm_eval.tasks")')
    hook.patch_task_manager(module)
    assert module.TaskManager.__init__ is init


def test_installed_lm_eval_is_patched_not_natively_pluggable():
    import lm_eval.tasks.manager as manager

    assert not hook._lm_eval_has_native_task_plugins(manager)
    assert getattr(manager.TaskManager.__init__, hook._PATCHED_MARK, False)


def _modules_imported_by_the_hook_at_start(env=None) -> list[str]:
    """What `python -X importtime -c pass` shows imported under `icl_ft._lm_eval_hook` (the .pth's import).

    importtime prints a module's own imports just before it, indented deeper.
    """
    import os

    stderr = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stderr
    rows = [line.split("|")[-1] for line in stderr.splitlines() if line.startswith("import time:") and "|" in line]
    names = [row.strip() for row in rows]
    if "icl_ft._lm_eval_hook" not in names:
        return []
    index = names.index("icl_ft._lm_eval_hook")
    depth = len(rows[index]) - len(rows[index].lstrip())
    nested = []
    for row in reversed(rows[:index]):
        if len(row) - len(row.lstrip()) <= depth:
            break
        nested.append(row.strip())
    return sorted([*nested, "icl_ft._lm_eval_hook"])


def test_the_hook_costs_one_tiny_module_at_interpreter_start():
    """No importlib.abc, typing or warnings at start: only the package's __init__ and the hook itself."""
    assert _modules_imported_by_the_hook_at_start() == ["icl_ft", "icl_ft._lm_eval_hook"]


def test_the_environment_variable_turns_the_hook_off():
    import os

    code = (
        "import sys; from lm_eval.tasks import TaskManager; "
        "print(any(type(f).__name__ == 'PatchOnImportFinder' for f in sys.meta_path), "
        "'icl_ft_reversal_forward_icl' in TaskManager(include_defaults=False).all_tasks)"
    )
    for value, expected in (("0", "False False"), ("off", "False False"), ("1", "True True")):
        env = {**os.environ, hook.DISABLE_VARIABLE: value}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert out.stdout.split() == expected.split(), (value, out.stderr[-2000:])
