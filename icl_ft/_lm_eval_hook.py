"""Zero-flag lm-eval integration: `lm_eval --tasks icl_ft_reversal` with no `--include_path`.

lm-eval 0.4.13 discovers tasks only in its own tree and in `--include_path`; it has no
plugin entry points yet (upstream PR #4015 proposes the `lm_eval.tasks` group, which
pyproject.toml declares for when it lands). Until then `icl_ft_lm_eval.pth` calls
`install()` at interpreter start. That only appends a finder to `sys.meta_path` (no
torch, no lm_eval import). When some program later imports `lm_eval.tasks.manager`,
the finder wraps `TaskManager.__init__` so that our task directory is indexed right
after lm-eval's built-in tasks and before any user `include_path` (which therefore still
wins a name clash).

The patch is defensive: if lm-eval's internals are not what this module expects, it
warns once and leaves lm-eval untouched. It does nothing when the directory is already
indexed (the user passed it, or a parent of it, as include_path) or when lm-eval
discovers entry-point task plugins itself, so no task is ever indexed twice.

The same finder registers this package's lm-eval models (`--model hf-prefix`) when
`lm_eval.models` is imported. It registers them lazily, as "module:Class" strings (no
torch import), and only AFTER lm-eval's own table: `get_model` imports that table only
while the registry is empty, so registering earlier would make `--model hf` unknown.

Cost at interpreter start: this module imports only `os` and `sys` (both already loaded
by then); the finder is a plain class with a `find_spec` method (an `importlib.abc` base
class would import ~30 ms of modules), and everything else waits until lm_eval is
imported. `ICL_FT_LM_EVAL_HOOK=0` in the environment turns the hook off.
"""

import os
import sys

TASK_MANAGER_MODULE = "lm_eval.tasks.manager"
MODELS_MODULE = "lm_eval.models"
# name -> "module:Class", the form lm-eval's registry materialises on first use.
PLUGIN_MODELS = {"hf-prefix": "icl_ft.prefix_scorer:PrefixCachingHFLM"}
_PATCHED_MARK = "_icl_ft_patched"
_TASKS_HINT = "use --include_path $(icl-ft tasks-dir)"
_warned = False
# Set to 0 (or false/no/off) to keep this package out of lm-eval: no task directory, no hf-prefix model.
DISABLE_VARIABLE = "ICL_FT_LM_EVAL_HOOK"


def _warn_once(message: str, hint: str = _TASKS_HINT) -> None:
    global _warned
    if not _warned:
        import warnings

        _warned = True
        warnings.warn(f"icl-ft: {message}; lm_eval is left unchanged ({hint})", stacklevel=2)


def tasks_dir():
    # Located without importing lm_eval_tasks (its __init__ is cheap, but this runs in every lm_eval process).
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "lm_eval_tasks"


def inspect_source(module) -> str:
    import inspect

    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return ""


def _lm_eval_has_native_task_plugins(manager_module) -> bool:
    """True once lm-eval itself reads the `lm_eval.tasks` entry-point group (upstream PR #4015)."""
    source = inspect_source(manager_module)
    return "entry_points" in source and "lm_eval.tasks" in source


def _already_indexed(include_path, ours) -> bool:
    from pathlib import Path

    paths = include_path if isinstance(include_path, (list, tuple)) else [include_path]
    for path in paths:
        if path is None:
            continue
        resolved = Path(path).expanduser().resolve()
        if resolved == ours or resolved in ours.parents:
            return True
    return False


def patch_task_manager(manager_module) -> None:
    """Make every new TaskManager index our task directory (see module docstring)."""
    import functools
    import inspect

    task_manager = getattr(manager_module, "TaskManager", None)
    if not isinstance(task_manager, type):
        _warn_once(f"{TASK_MANAGER_MODULE}.TaskManager not found")
        return
    original_init = task_manager.__init__
    if getattr(original_init, _PATCHED_MARK, False):
        return
    try:
        signature = inspect.signature(original_init)
    except (TypeError, ValueError):
        _warn_once("TaskManager.__init__ has no inspectable signature")
        return
    if "include_path" not in signature.parameters:
        _warn_once("TaskManager.__init__ no longer takes include_path")
        return
    if _lm_eval_has_native_task_plugins(manager_module):
        return  # lm-eval finds us through the entry point declared in pyproject.toml

    ours = tasks_dir()

    @functools.wraps(original_init)
    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:
            return original_init(self, *args, **kwargs)  # let lm-eval report the bad call
        include_path = bound.arguments.get("include_path")
        if ours.is_dir() and not _already_indexed(include_path, ours):
            user_paths = (
                []
                if include_path is None
                else (list(include_path) if isinstance(include_path, (list, tuple)) else [include_path])
            )
            bound.arguments["include_path"] = [str(ours), *user_paths]
        return original_init(*bound.args, **bound.kwargs)

    setattr(__init__, _PATCHED_MARK, True)
    task_manager.__init__ = __init__


def register_models(models_module) -> None:
    """Register PLUGIN_MODELS by name, lazily, unless a model of that name exists already."""
    try:
        from lm_eval.api.registry import model_registry

        for name, target in PLUGIN_MODELS.items():
            if name not in model_registry:  # lm-eval's own entry-point discovery or the user got there first
                model_registry.register(name, target=target)
    except Exception as err:  # registry internals changed: leave lm-eval's models alone
        _warn_once(
            f"could not register the {', '.join(PLUGIN_MODELS)} model ({type(err).__name__}: {err})",
            hint="pass the class to lm_eval.simple_evaluate(model=...) instead",
        )


class _PatchAfterExec:
    """Runs the real loader, then the patch. Everything else is delegated."""

    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            self._patch(module)
        except Exception as err:  # never break lm_eval because of us
            _warn_once(f"could not patch {module.__name__} ({type(err).__name__}: {err})")


class PatchOnImportFinder:
    """Finds nothing itself; wraps the loader of the modules it has patches for."""

    def __init__(self, patches):
        self.patches = dict(patches)

    def find_spec(self, fullname, path=None, target=None):
        patch = self.patches.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchAfterExec(spec.loader, patch)
                return spec
        return None


PATCHES = {TASK_MANAGER_MODULE: patch_task_manager, MODELS_MODULE: register_models}


def hook_enabled() -> bool:
    return os.environ.get(DISABLE_VARIABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def install() -> None:
    """Called from icl_ft_lm_eval.pth. Idempotent; patches at once if lm_eval is already imported.

    Does nothing when the environment sets ICL_FT_LM_EVAL_HOOK=0.
    """
    if not hook_enabled():
        return
    try:
        if any(isinstance(f, PatchOnImportFinder) for f in sys.meta_path):
            return
        sys.meta_path.insert(0, PatchOnImportFinder(PATCHES))
        for name, patch in PATCHES.items():
            if name in sys.modules:
                patch(sys.modules[name])
    except Exception as err:  # an interpreter start must never fail because of a plugin
        _warn_once(f"hook not installed ({type(err).__name__}: {err})")
