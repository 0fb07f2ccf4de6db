"""FinetuneConfig: validation, YAML + flag layering, the LoRA mapper and the step rule. No model."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from finetune.__main__ import config_from_args
from finetune.config import ConfigError, FinetuneConfig


def config(**overrides):
    return FinetuneConfig(**{"family": "reversal", "output": "out", **overrides})


def test_defaults_follow_the_paper():
    cfg = config()
    assert (cfg.learning_rate, cfg.batch_size, cfg.unit) == (3e-4, 8, "sentence")
    assert (cfg.min_steps, cfg.max_steps) == (200, 1000)


def test_to_lora_config_maps_every_lora_field():
    lora = config(lora_r=4, lora_alpha=8, lora_dropout=0.1).to_lora_config()
    assert (lora.r, lora.lora_alpha, lora.lora_dropout, lora.target_modules) == (4, 8, 0.1, "all-linear")
    assert lora.task_type == "CAUSAL_LM"
    named = config(lora_target_modules="q_proj, v_proj").to_lora_config()
    assert set(named.target_modules) == {"q_proj", "v_proj"}


@pytest.mark.parametrize(
    ("units", "expected"),
    [(1000, 375), (144, 200), (10_000, 1000)],  # 3 epochs of batch 8, clamped to [200, 1000]
)
def test_steps_scale_with_the_data_within_the_clamp(units, expected):
    assert config().num_steps(units) == expected


def test_explicit_steps_override_the_rule():
    assert config(steps=7).num_steps(1000) == 7


@pytest.mark.parametrize(
    ("overrides", "field", "hint"),
    [
        ({"family": ""}, "family", "required"),
        ({"family": "nope"}, "family", "reversal"),
        ({"output": ""}, "output", "required"),
        ({"unit": "paragraph"}, "unit", "cumulative"),
        ({"micro_batch_size": 3}, "micro_batch_size", "divide"),
        ({"lora_dropout": 1.5}, "lora_dropout", "[0, 1)"),
        ({"min_steps": 50, "max_steps": 10}, "min_steps", "max_steps"),
        ({"resume": True, "overwrite": True}, "overwrite", "resume"),
        ({"family_options": {"num_fact": 2}}, "family_options", "num_facts"),
        ({"extra_data": ["/no/such.jsonl"]}, "extra_data", "not a file"),
        ({"precision": "fp16"}, "precision", "bf16"),
    ],
)
def test_invalid_settings_name_field_value_and_fix(overrides, field, hint):
    with pytest.raises(ConfigError) as error:
        config(**overrides)
    message = str(error.value)
    assert message.startswith(f"{field}=") and hint in message


def test_yaml_gives_defaults_and_flags_override(tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("family: syllogism\noutput: from_yaml\nlearning-rate: 0.001\nlora_r: 4\n")
    cfg, _ = config_from_args(["--config", str(yaml_file), "--lora-r", "8", "--extra-data", ""])
    assert (cfg.family, cfg.output, cfg.learning_rate, cfg.lora_r) == ("syllogism", "from_yaml", 0.001, 8)


def test_yaml_unknown_key_lists_the_valid_ones(tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("family: reversal\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['learning_rat'\]; valid keys: .*'learning_rate'"):
        config_from_args(["--config", str(yaml_file)])


def test_family_option_flags_merge_in_order_and_are_typed(tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("family: reversal\nfamily_options: {num_facts: 5, examples_per_fact: 4}\n")
    cfg, _ = config_from_args(
        [
            "--config",
            str(yaml_file),
            "--output",
            "o",
            "--family-option",
            "examples_per_fact=2",
            "--family-option",
            "num_facts=6",
            "--family-option",
            "num_facts=8",
        ]
    )
    assert cfg.family_options == {"num_facts": 8, "examples_per_fact": 2}


def test_old_spellings_still_work_with_one_deprecation_line_each(tmp_path, capsys):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("family: reversal\nseed: 3\n")
    cfg, _ = config_from_args(
        ["--config", str(yaml_file), "--output-dir", "o", "--family-options", '{"num_facts": 4}', "--overwrite", "true"]
    )
    assert (cfg.train_seed, cfg.output, cfg.family_options, cfg.overwrite) == (3, "o", {"num_facts": 4}, True)
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 4 and all(": warning: " in line and "is deprecated; use" in line for line in warnings)
    assert any("--output-dir is deprecated; use --output" in line for line in warnings)
    assert any("'seed' is deprecated; use 'train_seed'" in line for line in warnings)
    cfg, _ = config_from_args(["--family", "reversal", "--output", "o", "--seed", "5", "--no-overwrite"])
    assert (cfg.train_seed, cfg.overwrite) == (5, False)
    assert "--seed is deprecated; use --train-seed" in capsys.readouterr().err


def test_help_shows_every_default():
    from finetune.__main__ import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "peak learning rate [default: 0.0003]" in text and "LoRA rank [default: 16]" in text
    assert "--train-seed" in text and "--family-option NAME=VALUE" in text and "--overwrite, --no-overwrite" in text


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--family", "reversal", "--output", "o", "--steps", "ten"], "steps='ten' is not valid; expected int"),
        (["--family", "reversal", "--output", "o", "--family-option", "[1]"], "is not a JSON object"),
        (["--family", "reversal", "--output", "o", "--family-option", "num_facts"], "expected NAME=VALUE"),
        (["--family", "reversal", "--output", "o", "--family-option", "num_facts=many"], "must be of type int"),
        (
            ["--family", "reversal", "--output", "o", "--family-option", "num_fact=3"],
            "unknown option(s) ['num_fact']; valid",
        ),
    ],
)
def test_flag_values_are_type_checked(argv, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        config_from_args(argv)


def test_cli_help_is_fast_and_errors_are_one_line(tmp_path):
    help_run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "finetune", "--help"], capture_output=True, text=True, check=True
    )
    assert "--learning-rate" in help_run.stdout
    imported = {line.split("|")[-1].strip() for line in help_run.stderr.splitlines()}
    assert not {"torch", "transformers", "peft", "datasets"} & imported
    bad = subprocess.run(
        [sys.executable, "-m", "finetune", "--family", "nope", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "family='nope'" in bad.stderr


def test_icl_ft_finetune_delegates_to_python_m_finetune(capsys):
    from icl_ft.cli import main

    assert main(["finetune", "--family", "nope", "--output", "out"]) == 2
    assert "finetune: error: family='nope'" in capsys.readouterr().err
