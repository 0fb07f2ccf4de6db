"""Bad input to every command: one line naming the input and the fix, a non-zero exit, nothing written.

Each case runs the real command in its own process (exit codes and stderr as a user sees them)
inside a scratch directory whose every file is compared before and after. The conditions fail
for root too (a path under a regular file, not a read-only directory: root writes anywhere).
The table of cases is docs/errors.md.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ctrl_c_when

pytestmark = pytest.mark.integration

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
FINETUNE = [sys.executable, "-m", "finetune"]
AUGMENT = [sys.executable, "-m", "augment"]
ICL_FT = [sys.executable, "-m", "icl_ft.cli"]


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root` (hidden ones too): directories by name, files by content hash."""
    entries = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        entries[relative] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def run(command: list[str], cwd: Path, timeout: float = 300) -> tuple[int, list[str]]:
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    return result.returncode, [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def scratch(tiny_model, tmp_path_factory) -> Path:
    """A directory with a regular file, a directory that is no model and a model whose weights are corrupt."""
    root = tmp_path_factory.mktemp("bad-input")
    (root / "a-file").write_text("not a directory\n")
    (root / "not-a-model").mkdir()
    (root / "not-a-model" / "notes.txt").write_text("hello\n")
    shutil.copytree(tiny_model("llama"), root / "tiny-model")
    broken = root / "broken-model"
    shutil.copytree(tiny_model("llama"), broken)
    (broken / "model.safetensors").write_text("corrupt weights\n")
    (root / "augment.yaml").write_text("mode: oracle\nfamily_options: 5\n")
    return root


# (command, expected exit code, fragments of the one stderr line)
CASES = {
    "finetune: model path that does not exist": (
        [*FINETUNE, "--family", "reversal", "--output", "out", "--model", "/no/such/model"],
        1,
        ["finetune: error: --model /no/such/model does not exist", "$(icl-ft model path)"],
    ),
    "finetune: directory that is not a model": (
        [*FINETUNE, "--family", "reversal", "--output", "out", "--model", "not-a-model"],
        1,
        ["--model not-a-model has no config.json, so it is not a model directory"],
    ),
    "finetune: hub id, offline and not cached": (
        [*FINETUNE, "--family", "reversal", "--output", "out", "--model", "nobody/no-such-model"],
        1,
        ["nobody/no-such-model is neither a local directory nor in the Hugging Face cache", "HF_HUB_OFFLINE=1"],
    ),
    "finetune: model whose weights do not load": (
        [*FINETUNE, "--family", "reversal", "--output", "out", "--model", "broken-model", "--steps", "2"],
        1,
        ["--model broken-model cannot be loaded (", "check the directory"],
    ),
    # The model's weights are corrupt: reaching the option error proves the options are checked first.
    "finetune: bad family option, checked before the model loads": (
        [
            *FINETUNE,
            "--family",
            "reversal",
            "--output",
            "out",
            "--model",
            "broken-model",
            "--family-option",
            "num_facts=-3",
        ],
        1,
        ["finetune: error: family 'reversal': num_facts=-3: must be an even number >= 2"],
    ),
    "finetune: output under a regular file": (
        [*FINETUNE, "--family", "reversal", "--output", "a-file/adapter", "--model", "broken-model"],
        1,
        ["a-file/adapter cannot be created:", "a-file is a file, not a directory; choose another --output"],
    ),
    "finetune: --overwrite onto a file": (
        [*FINETUNE, "--family", "reversal", "--output", "a-file", "--model", "broken-model", "--overwrite"],
        1,
        ["--output", "a-file is a file, not a directory; remove it or choose another --output"],
    ),
    "finetune: --overwrite onto a directory that is not an adapter": (
        [*FINETUNE, "--family", "reversal", "--output", "not-a-model", "--model", "broken-model", "--overwrite"],
        1,
        ["--overwrite replaces an adapter, but", "not-a-model holds other files"],
    ),
    "finetune: LoRA target modules the model does not have": (
        [*FINETUNE, "--family", "reversal", "--output", "out", "--model", "tiny-model", "--lora-target-modules", "qkv"],
        1,
        ["finetune: error: lora_target_modules='qkv': Target modules {'qkv'} not found in the base model"],
    ),
    "augment: model path that does not exist": (
        [*AUGMENT, "--mode", "local", "--output", "aug.jsonl", "--model", "/no/such/model"],
        1,
        ["augment: error: --model /no/such/model does not exist"],
    ),
    "augment: directory that is not a model": (
        [*AUGMENT, "--mode", "local", "--output", "aug.jsonl", "--model", "not-a-model"],
        1,
        ["augment: error: --model not-a-model has no config.json"],
    ),
    "augment: model whose weights do not load": (
        [*AUGMENT, "--mode", "local", "--output", "aug.jsonl", "--model", "broken-model"],
        1,
        ["augment: error: --model broken-model cannot be loaded ("],
    ),
    "augment: bad family option": (
        [
            *AUGMENT,
            "--mode",
            "local",
            "--output",
            "aug.jsonl",
            "--model",
            "broken-model",
            "--family-option",
            "num_facts=-3",
        ],
        1,
        ["augment: error: family 'reversal': num_facts=-3"],
    ),
    "augment: output under a regular file": (
        [*AUGMENT, "--mode", "oracle", "--output", "a-file/aug.jsonl"],
        1,
        ["a-file is a file, not a directory; choose another --output"],
    ),
    "augment: output is a directory": (
        [*AUGMENT, "--mode", "oracle", "--output", "not-a-model", "--overwrite"],
        1,
        ["not-a-model is a directory, not a file; choose a file path for --output"],
    ),
    "augment: YAML family_options that is no mapping, with --family-option": (
        [*AUGMENT, "--config", "augment.yaml", "--family-option", "num_facts=4", "--output", "aug.jsonl"],
        2,
        ["family_options=5 is not valid; expected a JSON object"],
    ),
    "study: output under a regular file": (
        [*ICL_FT, "study", "--model", "broken-model", "--tasks", "icl_ft_reversal", "--output", "a-file/run"],
        2,
        ["icl-ft study: error: --output", "a-file is a file, not a directory; choose another --output"],
    ),
    "study: output is a file": (
        [*ICL_FT, "study", "--model", "broken-model", "--tasks", "icl_ft_reversal", "--output", "a-file"],
        2,
        ["a-file is a file, not a run directory; choose a new --output"],
    ),
    "compare: output onto an existing file": (
        [*ICL_FT, "compare", "not-a-model", "--output", "a-file"],
        2,
        ["icl-ft: error: --output", "a-file is a file, not a directory"],
    ),
    "data: bad family option": (
        [*ICL_FT, "data", "reversal", "--family-option", "num_facts=-3"],
        2,
        ["icl-ft: error: num_facts=-3: must be an even number >= 2"],
    ),
    "data: negative --head": (
        [*ICL_FT, "data", "reversal", "--head", "-1"],
        2,
        ["icl-ft: error: head=-1 must be >= 0"],
    ),
    "data: unknown split": (
        [*ICL_FT, "data", "reversal", "--split", "tset"],
        2,
        ["icl-ft: error: unknown split 'tset'; choose one of"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_a_nonzero_exit_and_writes_nothing(scratch, case):
    command, expected_code, fragments = CASES[case]
    before = snapshot(scratch)
    code, lines = run(command, scratch)
    assert code == expected_code, lines
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert snapshot(scratch) == before  # no hidden .NAME.old-PID, no NAME.work, no header-only .partial


def test_ctrl_c_during_finetuning_is_one_line_with_the_resume_hint_and_resume_finishes(tiny_model, tmp_path):
    output = tmp_path / "adapter"
    command = [
        *FINETUNE,
        "--family",
        "syllogism",
        "--model",
        str(tiny_model("llama")),
        "--output",
        str(output),
        "--steps",
        "60",
        "--save-steps",
        "2",
        "--learning-rate",
        "1e-2",
        "--warmup-steps",
        "0",
        "--verify-texts",
        "4",
        "--threads",
        "1",
        "--precision",
        "fp32",
    ]
    checkpoints = tmp_path / "adapter.work" / "checkpoints"
    returncode, stderr = ctrl_c_when(
        command, ENV, ready=lambda: any(checkpoints.glob("checkpoint-*")), wait=240, timeout=120
    )
    assert returncode == 130, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last == (
        "finetune: interrupted; rerun the same command with --resume to continue from the last checkpoint "
        f"in {tmp_path / 'adapter.work'}"
    )
    assert "Traceback" not in stderr and not output.exists()
    code, lines = run([*command, "--resume"], tmp_path, timeout=600)
    assert code == 0, lines[-5:]
    assert (output / "adapter_model.safetensors").is_file() and not (tmp_path / "adapter.work").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # nothing hidden left behind


def test_a_start_up_failure_leaves_no_partial_and_overwrite_clears_a_stale_one(scratch, tmp_path):
    from icl_ft_common.artifacts import partial_path

    output = tmp_path / "oracle.jsonl"
    code, lines = run([*AUGMENT, "--mode", "local", "--output", str(output), "--model", "broken-model"], scratch)
    assert code == 1 and not partial_path(output).exists() and list(tmp_path.iterdir()) == []
    # A partial of an earlier run with other settings blocks the plain command, not --overwrite.
    partial_path(output).write_text('{"settings": {"mode": "oracle", "family": "syllogism"}}\n')
    code, lines = run([*AUGMENT, "--mode", "oracle", "--output", str(output)], scratch)
    assert code == 1 and "was written with other settings" in lines[0] and len(lines) == 1
    code, lines = run([*AUGMENT, "--mode", "oracle", "--output", str(output), "--overwrite"], scratch)
    assert code == 0, lines
    assert output.is_file() and not partial_path(output).exists()
