"""Score many LoRA adapters of one base model on one lm-eval task, loading the base once.

    from icl_ft.multi_adapter import AdapterCell, score_adapters
    outcomes = score_adapters(
        "models/base",
        [AdapterCell("base", None, Path("out/base")),                  # the base model, no adapter
         AdapterCell("ft-seed0", "adapters/ft-seed0", Path("out/ft-seed0")),
         AdapterCell("ft_local-seed0", "adapters/ft_local-seed0", Path("out/ft_local-seed0"))],
        task="icl_ft_reversal_ft", metadata={"seed": 0}, limit=20, batch_size=8,
    )
    outcomes["ft-seed0"].error        # None, or one line naming the adapter and the fix

Each cell's OUTPUT is what one run of

    lm_eval --model hf --model_args pretrained=BASE,dtype=float32[,peft=ADAPTER] --tasks TASK \\
        --log_samples --output_path OUTPUT

writes (the study's `evaluate`, which is that run through lm-eval's Python API): the same
`results_<ts>.json`, with `peft` in its model args so `icl-ft compare` labels the cell, and
the same `samples_<task>_<ts>.jsonl`, with equal log-likelihoods. lm-eval scores one `peft=`
adapter per run, so N cells cost N process starts, N model loads and N task builds; here the
base model is loaded once, every adapter is loaded into it once under its own name (PEFT
`load_adapter`), the task objects (and their generated data) are built once, and each cell
only switches the active adapter (`set_adapter`) and runs lm-eval's evaluation loop.

Adapter switching rather than PEFT's mixed-adapter batches (`adapter_names=[...]`): both do
the same arithmetic (a LoRA layer splits a mixed batch into one sub-batch per adapter), but
mixed batches would need requests of several cells in one lm-eval batch, which lm-eval's
`HFLM` cannot form; switching keeps lm-eval's own batching, so every cell's batches, and
hence its log-likelihoods, are those of a separate run.

The base-model cells run first on the plain model (exactly a run without `peft=`); then the
model is wrapped with the adapters. A cell's files are written into a hidden sibling
directory and renamed into place when complete, so an interrupted cell leaves no OUTPUT.
Bad adapters (missing directory, not a PEFT adapter, not LoRA, made for another base model)
fail their own cell with one line; the other cells are still scored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_PROVENANCE = "icl_ft_provenance.json"  # written by `finetune` next to the adapter


class AdapterError(ValueError):
    """An adapter that cannot be scored on this base model; the message is one line with the fix."""


@dataclasses.dataclass(frozen=True)
class AdapterCell:
    name: str  # unique label, e.g. "reversal-ft-seed0"
    adapter: str | None  # LoRA adapter directory; None scores the base model itself
    output_path: Path  # this cell's lm-eval --output_path (appears only when complete)


@dataclasses.dataclass
class CellOutcome:
    name: str
    error: str | None = None  # one line; None when the cell's files were written
    seconds: float = 0.0
    results_file: Path | None = None


# --- checks that need no model -------------------------------------------------------------


def check_adapter(adapter: str | Path, base_model: str | Path) -> None:
    """Raise AdapterError unless `adapter` is a LoRA adapter directory made for `base_model`."""
    path = Path(adapter)
    fix = "train it again (`icl-ft finetune`) or remove that cell"
    if not path.is_dir():
        raise AdapterError(f"adapter {adapter} does not exist; {fix}")
    try:
        config = json.loads((path / ADAPTER_CONFIG).read_text())
    except FileNotFoundError:
        raise AdapterError(f"adapter {adapter} has no {ADAPTER_CONFIG}, so it is not a PEFT adapter; {fix}") from None
    except (OSError, ValueError) as err:
        raise AdapterError(f"adapter {adapter}: {ADAPTER_CONFIG} is unreadable ({err}); {fix}") from None
    peft_type = str(config.get("peft_type", "?")) if isinstance(config, dict) else "?"
    if peft_type.upper() != "LORA":
        raise AdapterError(
            f"adapter {adapter} is not a LoRA adapter (peft_type {peft_type}); score it on its own with "
            f"lm_eval --model_args pretrained=...,peft={adapter}"
        )
    trained_on = _recorded_base(path, config)
    if trained_on is not None and not _same_model(trained_on, Path(base_model)):
        raise AdapterError(
            f"adapter {adapter} was trained on {trained_on[0]}, not on the base model {base_model}; "
            "score it on its own base model or retrain it on this one"
        )


def _recorded_base(adapter: Path, config: dict) -> tuple[str, dict[str, str] | None] | None:
    """(path, file hashes or None) of the base model the adapter says it was trained on, if it says."""
    try:
        provenance = json.loads((adapter / ADAPTER_PROVENANCE).read_text())
        record = provenance["base_model"]
        return str(record["path"]), record.get("files_sha256") or None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    recorded = config.get("base_model_name_or_path")
    # A hub id ("org/name") cannot be checked offline; PEFT still rejects mismatched shapes at load.
    return (str(recorded), None) if recorded and Path(recorded).is_dir() else None


def _same_model(recorded: tuple[str, dict[str, str] | None], base: Path) -> bool:
    """Same directory, or (a copy elsewhere) the same weight and config files by sha256."""
    path, hashes = recorded
    if Path(path).resolve() == base.resolve():
        return True
    if hashes is None:
        if not Path(path).is_dir():  # moved away and nothing else recorded: cannot tell
            return True
        from finetune.provenance import base_model_record

        hashes = base_model_record(path).get("files_sha256") or {}
    from finetune.data import sha256_file

    return bool(hashes) and all(
        (base / name).is_file() and sha256_file(base / name) == digest for name, digest in hashes.items()
    )


def _check_cells(cells: Sequence[AdapterCell]) -> None:
    names = [c.name for c in cells]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"cell names must be unique; repeated: {duplicated}")
    outputs = [Path(c.output_path).resolve() for c in cells]
    if len(set(outputs)) != len(outputs):
        raise ValueError("every cell needs its own output_path")


# --- scoring -------------------------------------------------------------------------------


def score_adapters(
    base_model: str | Path,
    cells: Sequence[AdapterCell],
    task: str,
    *,
    metadata: dict[str, Any] | None = None,
    limit: int | None = None,
    batch_size: int = 1,
    dtype: str = "float32",
    device: str | None = None,
    on_cell_done: Callable[[AdapterCell, CellOutcome], None] | None = None,
) -> dict[str, CellOutcome]:
    """Score every cell; return name -> outcome. `on_cell_done` is called as each cell finishes
    (e.g. to record it as done), so an interruption loses only the cell being scored."""
    import torch

    _check_cells(cells)
    base_model = str(base_model)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    outcomes = {c.name: CellOutcome(c.name) for c in cells}

    def finish(cell: AdapterCell, started: float, error: str | None, results: Path | None = None) -> None:
        outcome = outcomes[cell.name]
        outcome.error, outcome.seconds, outcome.results_file = error, time.monotonic() - started, results
        if error:
            logger.error("cell %s failed: %s", cell.name, error)
        if on_cell_done is not None:
            on_cell_done(cell, outcome)

    scorable = []
    for cell in cells:
        try:
            if cell.adapter is not None:
                check_adapter(cell.adapter, base_model)
            scorable.append(cell)
        except AdapterError as err:
            finish(cell, time.monotonic(), str(err))
    if not scorable:
        return outcomes

    base_args = {"pretrained": base_model, "dtype": dtype}
    scorer = _Scorer(base_args, task, metadata, limit, batch_size, device)
    # The base cells on the plain model, before any adapter is attached.
    for cell in (c for c in scorable if c.adapter is None):
        started = time.monotonic()
        finish(cell, started, *scorer.score(cell, base_args, None))
    adapter_cells = [c for c in scorable if c.adapter is not None]
    if adapter_cells:
        loaded = scorer.attach_adapters(adapter_cells)
        for cell in adapter_cells:
            started = time.monotonic()
            if isinstance(loaded[cell.name], str):  # the load error
                finish(cell, started, loaded[cell.name])
                continue
            finish(cell, started, *scorer.score(cell, {**base_args, "peft": str(cell.adapter)}, loaded[cell.name]))
    return outcomes


class _Scorer:
    """One HFLM over the base model, the task built once, and the adapters attached to it."""

    def __init__(self, base_args: dict, task: str, metadata, limit, batch_size: int, device: str):
        from lm_eval.api.registry import get_model

        self.base_model = base_args["pretrained"]
        self.task, self.metadata, self.limit = task, metadata or {}, limit
        self.batch_size, self.device = batch_size, device
        # The same construction as `simple_evaluate(model="hf", model_args=...)`.
        self.lm = get_model("hf").create_from_arg_obj(
            base_args, {"batch_size": batch_size, "max_batch_size": None, "device": device}
        )
        self.task_manager = _task_manager_building_once(self.metadata)
        self.adapter_names: dict[str, str] = {}  # adapter path -> PEFT adapter name

    def attach_adapters(self, cells: list[AdapterCell]) -> dict[str, str | tuple[str, str]]:
        """Load each cell's adapter into the model once; cell name -> (adapter name, path) or a load error."""
        from peft import PeftModel

        lm, loaded = self.lm, {}
        for cell in cells:
            path = str(cell.adapter)
            if path in self.adapter_names:
                loaded[cell.name] = (self.adapter_names[path], path)
                continue
            name = f"icl_ft_adapter_{len(self.adapter_names)}"  # a token no module name contains
            try:
                if isinstance(lm._model, PeftModel):
                    lm._model.load_adapter(path, adapter_name=name)
                else:
                    _resize_embeddings_like_hflm(lm)
                    lm._model = PeftModel.from_pretrained(lm._model, path, adapter_name=name)
            except Exception as err:  # noqa: BLE001 - a broken adapter fails its cell only
                loaded[cell.name] = _load_error(path, err, self.base_model)
                _remove_partly_loaded(lm, name)
                continue
            self.adapter_names[path] = name
            loaded[cell.name] = (name, path)
        if isinstance(lm._model, PeftModel):
            # What HFLM does after creating a model: dropout off, tied weights re-tied.
            lm._model.eval()
            lm._model.tie_weights()
        return loaded

    def score(self, cell: AdapterCell, model_args: dict, adapter: tuple[str, str] | None) -> tuple:
        """(error, results file): lm-eval's files for one cell, published atomically into its output_path."""
        output = Path(cell.output_path)
        staging = output.with_name(f".{output.name}.tmp-{os.getpid()}")
        for stale in output.parent.glob(f".{output.name}.tmp-*"):  # left by a killed earlier attempt
            shutil.rmtree(stale, ignore_errors=True)
        try:
            self._evaluate(model_args, adapter, staging)
            _publish(staging, output)
        except KeyboardInterrupt:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except Exception as err:  # one failing cell must not stop the others
            logger.debug("cell %s failed", cell.name, exc_info=True)
            shutil.rmtree(staging, ignore_errors=True)
            return _one_line(err), None
        results = sorted(output.glob("*/results_*.json"))
        if not results:
            return f"lm-eval wrote no results file under {output}", None
        return None, results[-1]

    def _evaluate(self, model_args: dict, adapter: tuple[str, str] | None, output_path: Path) -> None:
        import lm_eval
        from lm_eval.loggers import EvaluationTracker

        model = self.lm._model
        if adapter is not None:
            model.set_adapter(adapter[0])
        self.lm.peft = adapter[1] if adapter else None  # what get_model_info() reports (peft_sha)
        tracker = EvaluationTracker(output_path=str(output_path))
        results = lm_eval.simple_evaluate(
            model=self.lm,
            model_args=model_args,
            tasks=[self.task],
            batch_size=self.batch_size,
            device=self.device,
            limit=self.limit,
            log_samples=True,
            evaluation_tracker=tracker,
            task_manager=self.task_manager,
            metadata=self.metadata,
        )
        if results is None:
            raise RuntimeError("lm-eval returned no results")
        # simple_evaluate names a pre-built model by its class and counts every loaded adapter's
        # weights; a `--model hf` run names it "hf" and counts the base plus its one adapter.
        results["config"]["model"] = "hf"
        results["config"]["model_num_parameters"] = self._parameters_of(adapter[0] if adapter else None)
        tracker.general_config_tracker.model_source = "hf"
        samples = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=samples)
        for task_name in results["configs"]:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])

    def _parameters_of(self, active: str | None) -> int:
        """The parameter count of the base model plus the `active` adapter only (as one `peft=` run)."""
        counts: dict[str | None, int] = {}
        names = set(self.adapter_names.values())
        for name, param in self.lm._model.named_parameters():
            # PEFT keys an adapter's weights by its name: `...q_proj.lora_A.<adapter name>.weight`.
            owner = next((part for part in name.split(".") if part in names), None)
            counts[owner] = counts.get(owner, 0) + param.numel()
        return counts.get(None, 0) + (counts.get(active, 0) if active else 0)


def _task_manager_building_once(metadata: dict):
    """lm-eval's TaskManager (our tasks only, as the study's `evaluate`) that builds each task list
    once: every cell then scores the same task objects, whose data are generated only once."""
    from lm_eval.tasks import TaskManager

    from lm_eval_tasks import TASKS_DIR

    class BuildingOnce(TaskManager):
        def load(self, task_list):
            key = json.dumps(task_list, sort_keys=True, default=str)
            built = self.__dict__.setdefault("_icl_ft_built", {})
            if key not in built:
                built[key] = super().load(task_list)
            return built[key]

    return BuildingOnce(include_path=str(TASKS_DIR), include_defaults=False, metadata=metadata)


def _remove_partly_loaded(lm, name: str) -> None:
    """PEFT inserts an adapter's layers before it loads the weights: after a failed load (weights that
    do not fit), take them out again so that they neither count nor linger in the model."""
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    model = lm._model
    if isinstance(model, PeftModel):
        if name in model.peft_config:
            model.delete_adapter(name)
        return
    # The first adapter failed inside PeftModel.from_pretrained: the plain model got LoRA layers.
    for module_name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            parent, _, child = module_name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, module.get_base_layer())


def _resize_embeddings_like_hflm(lm) -> None:
    """HFLM resizes the embeddings when the tokenizer has more tokens than the model (LoRAs with
    added tokens) before attaching a `peft=` adapter; do the same so the adapters see that model."""
    config = lm._model.config
    text_config = getattr(config, "text_config", None)
    vocab_size = getattr(text_config, "vocab_size", None) or config.vocab_size
    if vocab_size != len(lm.tokenizer):
        lm._model.resize_token_embeddings(len(lm.tokenizer))


def _load_error(path: str, err: Exception, base_model: str) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if any("not found in the base model" in line for line in lines):
        return f"adapter {path} does not fit the base model {base_model}: its target modules are not in it"
    mismatch = next((line for line in lines if "size mismatch" in line), None)
    if mismatch:  # e.g. "size mismatch for ...q_proj.lora_A...weight: copying a param with shape ..."
        return f"adapter {path} does not fit the base model {base_model}: weight shapes differ ({mismatch[:200]})"
    return f"adapter {path} could not be loaded ({_one_line(err)})"


def _publish(staging: Path, output: Path) -> None:
    """Rename the finished files into place; an older output is replaced only once the new one is complete."""
    if not output.exists():
        os.replace(staging, output)
        return
    old = output.with_name(f".{output.name}.old-{os.getpid()}")
    os.replace(output, old)
    os.replace(staging, output)
    shutil.rmtree(old, ignore_errors=True)


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:400]
