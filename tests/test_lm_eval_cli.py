"""Real `lm_eval` subprocesses against the installed package, on tiny random models.

Covers what users type: no flag at all (the .pth hook), `--include_path`, a regular
(non-editable) wheel install, `--num_fewshot` (must not leak answers) and
`--apply_chat_template`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from lm_eval_tasks import TASKS_DIR

pytestmark = [pytest.mark.integration, pytest.mark.internals]

REPO = Path(__file__).resolve().parent.parent
LIMIT = 4


def run_lm_eval(
    model_dir: Path, tasks: str, out: Path, *extra: str, python: str = sys.executable
) -> subprocess.CompletedProcess:
    command = [
        python,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model_dir}",
        "--tasks",
        tasks,
        "--device",
        "cpu",
        "--batch_size",
        "4",
        "--limit",
        str(LIMIT),
        "--output_path",
        str(out),
        "--log_samples",
        *extra,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=out.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def results_and_samples(out: Path) -> tuple[dict, dict[str, list[dict]]]:
    (results_file,) = out.rglob("results_*.json")
    samples = {}
    for path in out.rglob("samples_*.jsonl"):
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return json.loads(results_file.read_text()), samples


def first_context(rows: list[dict]) -> str:
    row = min(rows, key=lambda r: r["doc_id"])
    return row["arguments"]["gen_args_0"]["arg_0"]


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
def test_no_flag_runs_every_reversal_task(tiny_model, tmp_path, architecture):
    model = tiny_model(architecture)
    run_lm_eval(model, "icl_ft_reversal", tmp_path / "out")
    results, samples = results_and_samples(tmp_path / "out")
    leaves = {
        "icl_ft_reversal_forward_icl",
        "icl_ft_reversal_reverse_icl",
        "icl_ft_reversal_forward_ft",
        "icl_ft_reversal_reverse_ft",
    }
    assert leaves <= set(results["results"])
    for name in leaves:
        assert 0.0 <= results["results"][name]["acc,none"] <= 1.0
        assert len(samples[name]) == LIMIT
    # condition subgroups aggregate their splits
    assert "acc,none" in results["results"]["icl_ft_reversal_icl"]
    # lm-eval reports the version the family's base YAML declares (bumped with its data or prompts)
    declared = yaml.safe_load((TASKS_DIR / "reversal" / "_reversal_base.yaml").read_text())["metadata"]["version"]
    assert results["versions"]["icl_ft_reversal_forward_icl"] == declared


def test_include_path_and_num_fewshot_and_seed(tiny_model, tmp_path):
    model = tiny_model("llama")
    result = run_lm_eval(
        model,
        "icl_ft_reversal_forward_ft",
        tmp_path / "out",
        "--include_path",
        str(TASKS_DIR),
        "--num_fewshot",
        "3",
        "--metadata",
        json.dumps({"seed": 7}),
    )
    assert "overrides existing task" not in result.stderr
    _, samples = results_and_samples(tmp_path / "out")
    from lm_eval_tasks.api import generate_family

    expected = generate_family("reversal", 7).tests["forward"][0]["query"]
    # 0-shot despite --num_fewshot 3: the prompt is the bare question, no answers leaked
    assert first_context(samples["icl_ft_reversal_forward_ft"]) == "- " + expected


def test_chat_template_puts_the_prompt_in_one_user_turn(tiny_model, tmp_path):
    run_lm_eval(tiny_model("qwen2"), "icl_ft_syllogism_deduction_icl", tmp_path / "out", "--apply_chat_template")
    _, samples = results_and_samples(tmp_path / "out")
    context = first_context(samples["icl_ft_syllogism_deduction_icl"])
    assert context.startswith("<|im_start|>user\n- The relationships between")
    assert context.endswith("are:<|im_end|>\n<|im_start|>assistant\n")
    assert context.count("<|im_start|>user") == 1


def test_regular_wheel_install_works_with_no_flag(tiny_model, tmp_path):
    """`pip install .` (not editable): build the wheel, install it into a fresh venv that
    borrows this environment's dependencies, and run lm_eval there with no flag."""
    wheel_dir = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheel_dir.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    venv_python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Dependencies come from this environment's site-packages as a plain path entry: its
    # .pth files (including the editable install of this repo) are NOT processed there.
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)], check=True
    )
    assert (site / "icl_ft_lm_eval.pth").exists()
    where = subprocess.run(
        [venv_python, "-c", "import lm_eval_tasks; print(lm_eval_tasks.TASKS_DIR)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert Path(where).is_relative_to(site)  # the wheel's copy, not this checkout
    run_lm_eval(tiny_model("llama"), "icl_ft_syllogism_deduction_ft", tmp_path / "out", python=str(venv_python))
    results, _ = results_and_samples(tmp_path / "out")
    assert "acc,none" in results["results"]["icl_ft_syllogism_deduction_ft"]
    shutil.rmtree(venv)
