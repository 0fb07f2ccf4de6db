"""Finetuning tiny random models of several architectures through the real Trainer path."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finetune import FinetuneError
from finetune.config import FinetuneConfig
from finetune.provenance import PROVENANCE_FILE
from finetune.train import run

pytestmark = [pytest.mark.integration, pytest.mark.internals]

REPO = Path(__file__).resolve().parents[1]
# Tiny models learn nothing at the paper's 3e-4 in a few steps; a large rate makes every change visible.
# One thread: tiny matmuls gain nothing from two, and on a busy shared CPU two are many times slower.
FAST = {"learning_rate": 1e-2, "warmup_steps": 0, "save_steps": 1000, "verify_texts": 8, "threads": 1}


def train(model_dir, output, **overrides) -> Path:
    settings = {"family": "syllogism", "model": str(model_dir), "output": str(output), "steps": 4, **FAST}
    return run(FinetuneConfig(**{**settings, **overrides}))


def adapter_tensors(directory: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(directory / "adapter_model.safetensors"))


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[name] - b[name]).abs().max().item() for name in a)


def finetune_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "finetune", *args]


def as_flags(settings: dict) -> list[str]:
    return [f"--{name.replace('_', '-')}={value}" for name, value in settings.items()]


@pytest.mark.parametrize("architecture", ["llama", "gpt2", "qwen2", "gpt_neox"])
def test_adapter_is_complete_changes_only_lora_and_reloads(tiny_model, tmp_path, architecture):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir = tiny_model(architecture)
    output = train(base_dir, tmp_path / "adapter", unit="cumulative" if architecture == "gpt2" else "sentence")

    assert {p.name for p in output.iterdir()} == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "README.md",
        PROVENANCE_FILE,
    }
    assert not (tmp_path / "adapter.work").exists() and [p.name for p in tmp_path.iterdir()] == ["adapter"]
    tensors = adapter_tensors(output)
    assert tensors and all("lora_" in name for name in tensors)
    # LoRA starts with B = 0; trained B matrices are not.
    assert all(tensor.abs().max() > 0 for name, tensor in tensors.items() if "lora_B" in name)

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    original = {name: p.clone() for name, p in base.named_parameters()}
    adapted = PeftModel.from_pretrained(base, str(output))
    for name, parameter in adapted.base_model.model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(parameter, original[name.replace(".base_layer", "")]), name

    record = json.loads((output / PROVENANCE_FILE).read_text())
    check = record["results"]["loglik_check"]
    assert check["mean_change_per_token"] > 0  # training made its own units more likely
    assert check["max_reload_difference"] < 1e-5  # the saved adapter is the trained one
    assert record["data"]["family"] == "syllogism" and record["data"]["train_sha256"]
    assert record["base_model"]["files_sha256"]["config.json"]
    assert record["results"]["padding_fraction"] < 0.10
    assert f"pretrained={base_dir},peft={output}" in record["lm_eval_command"]


def test_same_seed_same_adapter_other_seed_other_adapter(tiny_model, tmp_path):
    first = adapter_tensors(train(tiny_model("llama"), tmp_path / "a"))
    again = adapter_tensors(train(tiny_model("llama"), tmp_path / "b"))
    other = adapter_tensors(train(tiny_model("llama"), tmp_path / "c", train_seed=1))
    assert max_difference(first, again) == 0.0
    assert max_difference(first, other) > 0.0


def test_no_output_when_the_adapter_does_not_change_the_model(tiny_model, tmp_path):
    with pytest.raises(FinetuneError, match="changes the log-likelihood of training units by only"):
        train(tiny_model("llama"), tmp_path / "out", learning_rate=1e-12, steps=2)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.work"]  # checkpoints kept for inspection, no temp dir


def test_existing_output_needs_overwrite_and_extra_data_is_recorded(tiny_model, tmp_path):
    extra = tmp_path / "augmented.jsonl"
    extra.write_text(json.dumps({"text": "Some but not all glon are yomp."}) + "\n{broken\n")
    output = train(tiny_model("llama"), tmp_path / "out")
    with pytest.raises(FinetuneError, match="already exists; pass --overwrite"):
        train(tiny_model("llama"), tmp_path / "out")
    train(tiny_model("llama"), tmp_path / "out", overwrite=True, extra_data=[str(extra)], unit="document")
    record = json.loads((output / PROVENANCE_FILE).read_text())
    (extra_file,) = record["data"]["extra_files"]
    assert (extra_file["rows_used"], extra_file["rows_skipped"]) == (1, 1) and len(extra_file["sha256"]) == 64
    assert record["results"]["units"] == 72 + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["augmented.jsonl", "out"]


def test_resume_after_kill_9_matches_an_uninterrupted_run(tiny_model, tmp_path):
    settings = {"family": "reversal", "model": str(tiny_model("llama")), "steps": 24, "save_steps": 4}
    reference = train(tiny_model("llama"), tmp_path / "reference", **settings)

    output = tmp_path / "killed"
    flags = [*as_flags({**FAST, **settings}), "--output", str(output)]
    process = subprocess.Popen(finetune_command(*flags), stderr=subprocess.DEVNULL)
    checkpoint_state = tmp_path / "killed.work" / "checkpoints" / "checkpoint-8" / "trainer_state.json"
    deadline = time.monotonic() + 120
    while not checkpoint_state.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not output.exists()

    with pytest.raises(FinetuneError, match="pass --resume to continue it"):
        train(tiny_model("llama"), output, **settings)
    resumed = subprocess.run(finetune_command(*flags, "--resume"), check=False, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    record = json.loads((output / PROVENANCE_FILE).read_text())
    assert record["results"]["resumed_from_step"] >= 8
    difference = max_difference(adapter_tensors(reference), adapter_tensors(output))
    print(f"resumed vs uninterrupted: max |difference| of adapter weights {difference:.2e}")
    assert difference <= 1e-6
    # A second --resume (e.g. the kill came after the rename) finds the run complete.
    assert train(tiny_model("llama"), output, resume=True, **settings) == output


def free_port() -> int:
    """A TCP port nobody listens on now, for the launcher's rendezvous (not the fixed 29500)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_process_data_parallel_run_matches_one_process(tiny_model, tmp_path):
    # No dropout and fp32: then the only difference between 1 and 2 processes is summation order.
    settings = {"family": "reversal", "steps": 6, "lora_dropout": 0.0, "precision": "fp32"}
    single = train(tiny_model("llama"), tmp_path / "single", **settings)
    flags = as_flags({**FAST, **settings})

    def launch(output: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                str(Path(sys.executable).with_name("accelerate")),
                "launch",
                "--multi_gpu",
                "--num_processes",
                "2",
                "--num_machines",
                "1",
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
                "--main_process_port",
                str(free_port()),
                "-m",
                "finetune",
                "--model",
                str(tiny_model("llama")),
                "--output",
                str(output),
                *flags,
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )

    double = tmp_path / "double"
    launched = launch(double)
    if launched.returncode != 0:
        # One full-suite run saw a worker abort (SIGABRT) in the gloo launch; the same test then
        # passed alone. A second launch tells such a start-up failure from a real one.
        print("first 2-process launch failed, relaunching:\n" + launched.stderr[:3000])
        double = tmp_path / "double-relaunched"  # the first attempt's work dir is left as it was
        launched = launch(double)
    assert launched.returncode == 0, launched.stderr[:3000]
    record = json.loads((double / PROVENANCE_FILE).read_text())
    assert record["runtime"]["world_size"] == 2 and record["runtime"]["micro_batch_size"] == 4
    difference = max_difference(adapter_tensors(single), adapter_tensors(double))
    print(f"2 processes vs 1: max |difference| of adapter weights {difference:.2e}")
    assert difference < 1e-4


def test_lm_eval_scores_the_adapter_with_the_recorded_command(tiny_model, tmp_path):
    import shlex

    output = train(tiny_model("llama"), tmp_path / "adapter", data_seed=1)
    command = json.loads((output / PROVENANCE_FILE).read_text())["lm_eval_command"]
    assert """--metadata '{"seed": 1}'""" in command
    flags = ["--device", "cpu", "--batch_size", "4", "--limit", "4", "--output_path", str(tmp_path / "results")]
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    scored = subprocess.run(
        [*shlex.split(command), *flags], capture_output=True, text=True, env={**os.environ, "PATH": path}
    )
    assert scored.returncode == 0, scored.stderr[-2000:]
    (results_file,) = (tmp_path / "results").rglob("results_*.json")
    results = json.loads(results_file.read_text())
    assert results["results"]["icl_ft_syllogism_deduction_ft"]["sample_len"] == 4
    assert results["config"]["model_args"]["peft"] == str(output)
    assert results["configs"]["icl_ft_syllogism_deduction_ft"]["metadata"]["seed"] == 1  # the data it was trained on


@pytest.mark.slow
def test_embedded_smollm2_adapter_makes_training_units_more_likely(tmp_path):
    output = run(
        FinetuneConfig(
            family="syllogism",
            family_options={"num_items": 8},
            output=str(tmp_path / "adapter"),
            steps=3,
            learning_rate=1e-3,
            warmup_steps=0,
            save_steps=1000,
            verify_texts=8,
            threads=1,
        )
    )
    record = json.loads((output / PROVENANCE_FILE).read_text())
    assert record["base_model"]["provenance"]  # the embedded model's own conversion record
    assert record["results"]["loglik_check"]["mean_change_per_token"] > 0
    assert """--metadata '{"num_items": 8}'""" in record["lm_eval_command"]


def test_resume_picks_the_last_complete_checkpoint_and_refuses_changed_settings(tmp_path):
    from finetune.train import RUN_CONFIG_FILE, check_directories

    cfg = FinetuneConfig(family="reversal", output=str(tmp_path / "out"), resume=True)
    checkpoints = tmp_path / "out.work" / "checkpoints"
    for step, complete in ((4, True), (8, True), (12, False)):  # 12: killed while saving
        directory = checkpoints / f"checkpoint-{step}"
        directory.mkdir(parents=True)
        (directory / "optimizer.pt").write_bytes(b"")
        (directory / "rng_state.pth").write_bytes(b"")
        (directory / "trainer_state.json").write_text('{"global_step": 1}' if complete else '{"global_st')
    (tmp_path / "out.work" / RUN_CONFIG_FILE).write_text(json.dumps(cfg.to_dict()))
    assert check_directories(cfg).name == "checkpoint-8"
    changed = FinetuneConfig(**{**cfg.to_dict(), "learning_rate": 1e-3, "logging_steps": 1})
    with pytest.raises(FinetuneError, match=r"differ from the interrupted run: learning_rate: 0.0003 -> 0.001$"):
        check_directories(changed)


def test_a_run_config_written_before_the_renames_still_resumes(tmp_path):
    """run_config.json of an interrupted run from before `seed` -> `train_seed`, `output_dir` -> `output`
    and typed family options: the same settings under old names are no difference."""
    from finetune.train import RUN_CONFIG_FILE, check_directories

    cfg = FinetuneConfig(
        family="reversal", output=str(tmp_path / "out"), resume=True, train_seed=2, family_options={"num_facts": "4"}
    )
    checkpoint = tmp_path / "out.work" / "checkpoints" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    for name, content in (("optimizer.pt", ""), ("rng_state.pth", ""), ("trainer_state.json", "{}")):
        (checkpoint / name).write_text(content)
    old = {("output_dir" if k == "output" else "seed" if k == "train_seed" else k): v for k, v in cfg.to_dict().items()}
    old["family_options"] = {"num_facts": "4"}  # as the command line gave it
    (tmp_path / "out.work" / RUN_CONFIG_FILE).write_text(json.dumps(old))
    assert check_directories(cfg).name == "checkpoint-4"
    with pytest.raises(FinetuneError, match=r"train_seed: 2 -> 3$"):
        check_directories(FinetuneConfig(**{**cfg.to_dict(), "train_seed": 3}))


def test_resume_refuses_an_extra_data_file_that_changed_and_provenance_records_the_precision(tiny_model, tmp_path):
    """Checkpoints trained on one file must not continue on another; nothing of the run is touched."""
    extra = tmp_path / "augmented.jsonl"
    extra.write_text(json.dumps({"text": "Some but not all glon are yomp."}) + "\n")
    settings = dict(extra_data=[str(extra)], steps=4, save_steps=2, keep_checkpoints=True, precision="fp32")
    output = train(tiny_model("llama"), tmp_path / "out", **settings)
    runtime = json.loads((output / PROVENANCE_FILE).read_text())["runtime"]
    assert (runtime["precision"], runtime["precision_requested"], runtime["device"]) == ("fp32", "fp32", "cpu")
    assert "same kind of machine" in runtime["reproducible_on"]
    shutil.rmtree(output)  # as if killed after the last checkpoint, before publishing
    work = tmp_path / "out.work"
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    extra.write_text(json.dumps({"text": "All glon are yomp."}) + "\n")
    with pytest.raises(FinetuneError) as refused:
        train(tiny_model("llama"), tmp_path / "out", **{**settings, "keep_checkpoints": False}, resume=True)
    assert str(refused.value).startswith(f"--resume refused: extra data file {extra} (sha256 ")
    assert str(refused.value).endswith("restore it, or pass --overwrite to start over")
    assert {p: p.read_bytes() for p in work.rglob("*") if p.is_file()} == before and not output.exists()
