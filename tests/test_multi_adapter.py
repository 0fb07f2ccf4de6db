"""Every adapter of a family scored in one pass (`icl_ft.multi_adapter`), checked against one real
lm-eval run per adapter on a tiny random model with random non-zero LoRA adapters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from icl_ft.multi_adapter import AdapterCell, check_adapter, score_adapters
from tests.tiny_models import save_random_lora

pytestmark = pytest.mark.integration

TASK = "icl_ft_reversal_ft"
METADATA = {"seed": 0, "num_facts": 4, "examples_per_fact": 2}
LIMIT, BATCH = 3, 2
MAX_ABS_DLL = 1e-4
# What differs between two runs of the same evaluation: when it ran and how long it took.
VOLATILE = {"date", "total_evaluation_time_seconds"}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def adapters(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    base = tiny_model("llama")
    return base, {f"seed{k}": str(save_random_lora(base, root / f"lora-seed{k}", seed=k)) for k in (1, 2, 3)}


def separate_run(base: Path, adapter: str | None, out: Path) -> Path:
    """One lm-eval run for one cell: the study's own scoring call (lm-eval's Python API)."""
    from icl_ft.study import runner

    model_args = {"pretrained": str(base), "dtype": "float32", **({"peft": adapter} if adapter else {})}
    runner.evaluate("hf", model_args, TASK, METADATA, LIMIT, BATCH, out)
    return out


def read_cell(output: Path) -> tuple[dict, dict[str, list[dict]]]:
    """(results without its volatile keys, task -> sample rows) of one lm-eval output dir."""
    (results_path,) = output.glob("*/results_*.json")
    results = {k: v for k, v in json.loads(results_path.read_text()).items() if k not in VOLATILE}
    samples = {
        path.name.removeprefix("samples_").rsplit("_", 1)[0]: [
            json.loads(line) for line in path.read_text().splitlines()
        ]
        for path in results_path.parent.glob("samples_*.jsonl")
    }
    return results, samples


def max_abs_dll(a: dict[str, list[dict]], b: dict[str, list[dict]]) -> float:
    assert sorted(a) == sorted(b)
    diffs = [
        abs(float(x[0]) - float(y[0]))
        for task in a
        for row_a, row_b in zip(a[task], b[task], strict=True)
        for (x,), (y,) in zip(row_a["resps"], row_b["resps"], strict=True)
    ]
    assert diffs
    return max(diffs)


def assert_same_cell(ours: Path, reference: Path) -> float:
    """Everything but timing equal; log-likelihoods within MAX_ABS_DLL; returns the max |dLL|."""
    results, samples = read_cell(ours)
    ref_results, ref_samples = read_cell(reference)
    # The files land in the same model subdirectory (lm-eval names it after the peft path).
    assert [p.name for p in ours.iterdir()] == [p.name for p in reference.iterdir()]
    dll = max_abs_dll(samples, ref_samples)
    assert dll <= MAX_ABS_DLL

    def strip(rows):
        return [{k: v for k, v in r.items() if k not in ("resps", "filtered_resps")} for r in rows]

    assert {t: strip(r) for t, r in samples.items()} == {t: strip(r) for t, r in ref_samples.items()}
    assert results == ref_results
    return dll


def test_one_pass_equals_one_lm_eval_run_per_adapter(adapters, tmp_path):
    base, loras = adapters
    cells = [AdapterCell("base", None, tmp_path / "ours" / "base")] + [
        AdapterCell(name, path, tmp_path / "ours" / name) for name, path in loras.items()
    ]
    done = []
    outcomes = score_adapters(
        base,
        cells,
        TASK,
        metadata=METADATA,
        limit=LIMIT,
        batch_size=BATCH,
        on_cell_done=lambda cell, outcome: done.append((cell.name, outcome.error)),
    )
    assert done == [(c.name, None) for c in cells]  # reported one by one, in order, base first
    assert all(o.error is None and o.results_file.is_file() for o in outcomes.values())

    dlls, scores = {}, {}
    for cell in cells:
        reference = separate_run(base, cell.adapter, tmp_path / "separate" / cell.name)
        dlls[cell.name] = assert_same_cell(cell.output_path, reference)
        scores[cell.name] = [r["resps"] for rows in read_cell(reference)[1].values() for r in rows]
        results = json.loads(outcomes[cell.name].results_file.read_text())
        assert results["config"]["model"] == "hf"
        assert results["config"]["model_args"].get("peft") == cell.adapter
    # The adapters change the scores (each differs from the base and from each other) ...
    assert len({json.dumps(s) for s in scores.values()}) == len(cells)
    print(f"max |dLL| per cell vs separate runs: {dlls}")


def test_compare_labels_each_cell_by_its_adapter(adapters, tmp_path):
    from icl_ft.analysis.loading import load_runs

    base, loras = adapters
    cells = [AdapterCell("base", None, tmp_path / "base")] + [
        AdapterCell(name, path, tmp_path / name) for name, path in loras.items()
    ]
    score_adapters(base, cells, TASK, metadata=METADATA, limit=LIMIT, batch_size=BATCH)
    loaded = load_runs([c.output_path for c in cells])
    assert [run.conditions for run in loaded.runs] == [("base",)] + [(f"ft:lora-{n}",) for n in loras]
    assert [run.adapter for run in loaded.runs] == [None, *loras.values()]
    assert {s.condition for s in loaded.samples} == {"base", *(f"ft:lora-{n}" for n in loras)}


def test_lm_eval_cli_run_gives_the_same_log_likelihoods(adapters, tmp_path):
    """Against the command a user would type (which also records model args in task metadata)."""
    base, loras = adapters
    adapter = loras["seed1"]
    score_adapters(
        base, [AdapterCell("ft", adapter, tmp_path / "ours")], TASK, metadata=METADATA, limit=LIMIT, batch_size=BATCH
    )
    command = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={base},dtype=float32,peft={adapter}",
        "--tasks",
        TASK,
        "--metadata",
        json.dumps(METADATA),
        "--limit",
        str(LIMIT),
        "--batch_size",
        str(BATCH),
        "--device",
        "cpu",
        "--log_samples",
        "--output_path",
        str(tmp_path / "cli"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, check=False, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ours, cli = read_cell(tmp_path / "ours"), read_cell(tmp_path / "cli")
    assert max_abs_dll(ours[1], cli[1]) <= MAX_ABS_DLL
    assert ours[0]["results"] == cli[0]["results"]
    assert [p.name for p in (tmp_path / "ours").iterdir()] == [p.name for p in (tmp_path / "cli").iterdir()]


# --- bad input -----------------------------------------------------------------------------


def ia3_adapter(base: Path, out: Path) -> Path:
    from peft import IA3Config, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), IA3Config(task_type="CAUSAL_LM"))
    model.save_pretrained(out)
    return out


def misfit_lora(base: Path, out: Path) -> Path:
    """A LoRA adapter whose config says rank 8 while its weights have rank 4."""
    save_random_lora(base, out)
    config = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps({**config, "r": 8}))
    return out


def test_bad_adapters_fail_their_own_cell_with_one_line(adapters, tiny_model, tmp_path):
    base, loras = adapters
    from tests.tiny_models import build_tiny_model

    other_llama = build_tiny_model("llama", tmp_path / "other-llama", seed=7)  # same shapes, other weights
    # An adapter naming its base by hub id cannot be checked offline: loading it must fail cleanly.
    gpt2_lora = save_random_lora(tiny_model("gpt2"), tmp_path / "gpt2-lora")
    config = json.loads((gpt2_lora / "adapter_config.json").read_text())
    (gpt2_lora / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "org/gpt2-tiny"}))
    not_peft = tmp_path / "not-peft"
    not_peft.mkdir()
    (not_peft / "weights.bin").write_bytes(b"")
    bad = {
        "missing": (str(tmp_path / "no-such-adapter"), "does not exist"),
        "not_peft": (str(not_peft), "has no adapter_config.json"),
        "ia3": (str(ia3_adapter(base, tmp_path / "ia3")), "is not a LoRA adapter (peft_type IA3)"),
        "other_base": (str(save_random_lora(other_llama, tmp_path / "other-base-lora")), "was trained on"),
        "gpt2": (str(gpt2_lora), "does not fit the base model"),
    }
    cells = [AdapterCell(name, path, tmp_path / "out" / name) for name, (path, _) in bad.items()]
    cells.append(AdapterCell("good", loras["seed1"], tmp_path / "out" / "good"))
    # Weights that do not fit their config fail after PEFT has inserted the adapter's layers: first
    # (wrapping the plain model) and between good adapters; the good ones must be scored as if alone.
    cells.insert(0, AdapterCell("misfit_first", str(misfit_lora(base, tmp_path / "misfit1")), tmp_path / "out" / "m1"))
    cells.append(AdapterCell("misfit_later", str(misfit_lora(base, tmp_path / "misfit2")), tmp_path / "out" / "m2"))
    cells.append(AdapterCell("good2", loras["seed2"], tmp_path / "out" / "good2"))
    outcomes = score_adapters(base, cells, TASK, metadata=METADATA, limit=LIMIT, batch_size=BATCH)
    for name, (path, message) in bad.items():
        error = outcomes[name].error
        assert error and "\n" not in error and path in error and message in error, (name, error)
        assert not (tmp_path / "out" / name).exists()
    for name in ("misfit_first", "misfit_later"):
        assert "does not fit the base model" in outcomes[name].error and "weight shapes differ" in outcomes[name].error
    assert outcomes["good"].error is None and outcomes["good2"].error is None
    assert_same_cell(tmp_path / "out" / "good", separate_run(base, loras["seed1"], tmp_path / "separate"))
    assert_same_cell(tmp_path / "out" / "good2", separate_run(base, loras["seed2"], tmp_path / "separate2"))


def test_check_adapter_accepts_a_copy_of_the_base_model(adapters, tmp_path):
    """A base model moved or copied elsewhere is the same model: the weights decide, not the path."""
    import shutil

    base, loras = adapters
    copy = shutil.copytree(base, tmp_path / "copy-of-base")
    check_adapter(loras["seed1"], copy)


# --- interruption --------------------------------------------------------------------------

# Scores two cells; while writing the second cell's samples (its results file is already
# written), it reports its PID and stops, to be killed.
KILLED_SCORER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from lm_eval.loggers import EvaluationTracker
    from icl_ft.multi_adapter import AdapterCell, score_adapters

    base, adapter, out, marker = sys.argv[1:5]
    real = EvaluationTracker.save_results_samples
    def save_then_hang(self, task_name, samples):
        real(self, task_name, samples)
        if "second" in str(self.output_path):
            Path(marker).write_text("ready")
            time.sleep(600)
    EvaluationTracker.save_results_samples = save_then_hang
    cells = [AdapterCell("first", None, Path(out) / "first"), AdapterCell("second", adapter, Path(out) / "second")]
    score_adapters(base, cells, "{task}", metadata={metadata}, limit={limit}, batch_size={batch})
    """
).format(task=TASK, metadata=METADATA, limit=LIMIT, batch=BATCH)


def test_a_cell_killed_midway_leaves_no_output_and_a_rerun_completes_it(adapters, tmp_path):
    base, loras = adapters
    out, marker = tmp_path / "out", tmp_path / "marker"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_SCORER, str(base), loras["seed2"], str(out), str(marker)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the scorer never reached the second cell"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()

    # The first cell is complete; the second, killed with part of its files written, has no output.
    assert read_cell(out / "first")[0]["results"]
    assert not (out / "second").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".second.tmp-")]  # its unpublished files

    outcomes = score_adapters(
        base,
        [AdapterCell("second", loras["seed2"], out / "second")],
        TASK,
        metadata=METADATA,
        limit=LIMIT,
        batch_size=BATCH,
    )
    assert outcomes["second"].error is None
    assert sorted(p.name for p in out.iterdir()) == ["first", "second"]  # the stale files are gone
    assert_same_cell(out / "second", separate_run(base, loras["seed2"], tmp_path / "separate"))
