"""`python -m augment` end to end with a scripted fake generator: modes, resume, atomic output, config."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from augment import run as main
from augment.__main__ import cli, config_from_args
from augment.config import AugmentConfig, ConfigError
from icl_ft_common.artifacts import dropped_path, summary_path


def statement_of(prompt: str) -> str:
    return prompt.rsplit("Statement: ", 1)[1].splitlines()[0]


def reversal_of(statement: str) -> str:
    """The scripted model: reverses "A are C than B." correctly only for a few comparatives."""
    words = statement.rstrip(".").split()
    opposite = {"bigger": "smaller", "smaller": "bigger"}.get(words[2], words[2])
    return f"{words[-1]} are {opposite} {' '.join(words[3:-1])} {words[0]}."


class ScriptedGenerator:
    name = "scripted-fake"

    def __init__(self, fail_after_calls: int | None = None):
        self.calls: list[int] = []
        self.fail_after_calls = fail_after_calls

    def __call__(self, prompts, params):
        if self.fail_after_calls is not None and len(self.calls) >= self.fail_after_calls:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-run
        self.calls.append(len(prompts))
        outputs = []
        for prompt in prompts:
            if "Statement: " in prompt:
                statement = statement_of(prompt)
                outputs.append(
                    f" Compared with the rest, {statement}\n2. {statement}\nReversals:\n1. "
                    f"{reversal_of(statement)}\n2. blorf are tiny.\n\nStatement: Cats are"
                )
            else:
                document = prompt.rsplit("Fact to think about: ", 1)[1].splitlines()[0]
                outputs.append(f" {reversal_of(document)}\n2. Therefore something follows\n\nFact to think about")
        return outputs


def config(tmp_path, **overrides) -> AugmentConfig:
    options = dict(mode="local", family="reversal", output=str(tmp_path / "out.jsonl"), batch_size=4, limit=10)
    options.update(overrides)
    return AugmentConfig(**options)


def read_jsonl(path):
    return [json.loads(line) for line in open(path)]


def test_local_mode_writes_rows_with_provenance_and_counts_drops(tmp_path):
    cfg = config(tmp_path)
    summary = main(cfg, generate=ScriptedGenerator())
    rows = read_jsonl(cfg.output_path)
    assert summary["items"] == 10 and summary["generations"] == 10
    # per fact: one rephrase and one reversal kept; the copy and the invented "blorf" dropped
    assert summary["kept_by_kind"] == {"rephrase": 10, "reversal": 10}
    assert summary["dropped_by_reason"]["copy_of_source"] == 10
    assert summary["dropped_by_reason"]["new_nonsense_word"] == 10
    assert summary["kept"] + summary["dropped"] == summary["sentences"] == 40
    assert len(rows) == 20 and len({row["id"] for row in rows}) == 20
    row = rows[0]
    assert set(row) >= {
        "id",
        "source_id",
        "kind",
        "text",
        "generator",
        "prompt_version",
        "sampling",
        "sample_seed",
        "family",
        "data_seed",
    }
    assert row["generator"] == "scripted-fake" and row["prompt_version"] == "local-v1"
    assert row["sampling"]["max_new_tokens"] == cfg.max_new_tokens and row["family"] == "reversal"
    dropped = read_jsonl(dropped_path(cfg.output_path))
    assert len(dropped) == 20 and {d["reason"] for d in dropped} == {"copy_of_source", "new_nonsense_word"}
    on_disk = json.loads(summary_path(cfg.output_path).read_text())
    assert on_disk["kept"] == 20 and on_disk["data"]["family"] == "reversal"


def test_each_distinct_fact_is_augmented_once_from_its_plain_statement(tmp_path):
    from lm_eval_tasks.api import generate_family

    generator = ScriptedGenerator()
    main(config(tmp_path, limit=None, batch_size=50), generate=generator)
    data = generate_family("reversal")
    assert sum(generator.calls) == len({row["source_id"] for row in data.train}) == 100
    rows = read_jsonl(tmp_path / "out.jsonl")
    rephrased = {row["text"].removeprefix("Compared with the rest, ") for row in rows if row["kind"] == "rephrase"}
    assert rephrased == set(data.icl_facts)


def test_global_mode_without_prefix_cache_support_and_with_subsampling(tmp_path):
    cfg = config(tmp_path, mode="global", context_token_budget=2000)
    summary = main(cfg, generate=ScriptedGenerator())
    context = summary["global_context"]
    assert context["subsampled"] and 0 < context["documents_shown"] < context["documents_total"] == 1000
    assert context["tokens_counted_by"].startswith("characters")
    rows = read_jsonl(cfg.output_path)
    assert len(rows) == 10 and {row["kind"] for row in rows} == {"inference"}
    assert summary["dropped_by_reason"]["truncated"] == 10  # "Therefore something follows" has no period


def test_oracle_mode_is_labelled_and_separate(tmp_path):
    summary = main(AugmentConfig(mode="oracle", family="syllogism", output=str(tmp_path / "o.jsonl")))
    rows = read_jsonl(tmp_path / "o.jsonl")
    assert summary["generator"] == "oracle" and summary["kept"] == len(rows) == 72
    assert {row["generator"] for row in rows} == {"oracle"} and {row["kind"] for row in rows} == {"inference"}
    assert rows[0]["sampling"] is None and rows[0]["prompt_version"] is None


def test_default_output_names_keep_modes_apart():
    assert {AugmentConfig(mode=m).output_path.name for m in ("local", "global", "oracle")} == {
        "reversal-seed0-local.jsonl",
        "reversal-seed0-global.jsonl",
        "reversal-seed0-oracle.jsonl",
    }


def test_interrupted_run_resumes_without_duplicates_or_loss(tmp_path):
    reference = main(config(tmp_path, output=str(tmp_path / "ref.jsonl")), generate=ScriptedGenerator())
    cfg = config(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        main(cfg, generate=ScriptedGenerator(fail_after_calls=2))  # items 1-8 done, 9-10 not
    partial = tmp_path / "out.jsonl.partial"
    assert not cfg.output_path.exists() and len(partial.read_text().splitlines()) == 1 + 8
    # a write torn by the interruption: the half line is cut and its item generated again
    with open(partial, "a") as handle:
        handle.write('{"item": "reversal-fact-0')
    resumed = ScriptedGenerator()
    summary = main(cfg, generate=resumed)
    assert resumed.calls == [2]  # only the two missing items
    assert read_jsonl(cfg.output_path) == read_jsonl(tmp_path / "ref.jsonl")
    assert summary["kept"] == reference["kept"] and summary["dropped_by_reason"] == reference["dropped_by_reason"]
    assert not partial.exists()


def test_final_file_appears_only_when_complete(tmp_path):
    cfg = config(tmp_path, limit=8)
    seen_final = []

    class Watching(ScriptedGenerator):
        def __call__(self, prompts, params):
            seen_final.append(cfg.output_path.exists() or summary_path(cfg.output_path).exists())
            return super().__call__(prompts, params)

    main(cfg, generate=Watching())
    assert seen_final == [False, False] and cfg.output_path.exists()
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_resume_with_other_settings_and_existing_output_are_refused(tmp_path):
    cfg = config(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        main(cfg, generate=ScriptedGenerator(fail_after_calls=1))
    with pytest.raises(RuntimeError, match="differing: \\['sampling_seeds', 'temperature'\\]"):
        main(config(tmp_path, temperature=0.5), generate=ScriptedGenerator())
    main(cfg, generate=ScriptedGenerator())
    with pytest.raises(RuntimeError, match="already exists"):
        main(cfg, generate=ScriptedGenerator())
    main(config(tmp_path, overwrite=True), generate=ScriptedGenerator())


def test_a_generator_returning_the_wrong_number_of_outputs_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="returned 1 generations for 4 prompts"):
        main(config(tmp_path), generate=lambda prompts, params: ["x"])


def test_config_file_gives_defaults_flags_override_and_unknown_keys_are_rejected(tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("mode: local\ntemperature: 0.7\nnum_samples: 2\nfamily_options: {num_facts: 20}\n")
    cfg, _ = config_from_args(
        ["--config", str(yaml_file), "--num-samples", "3", "--family-option", "examples_per_fact=2"]
    )
    assert (cfg.temperature, cfg.num_samples) == (0.7, 3)
    assert cfg.family_options == {"num_facts": 20, "examples_per_fact": 2}
    yaml_file.write_text("mode: local\ntemprature: 0.7\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['temprature'\]; valid keys: .*'temperature'"):
        config_from_args(["--config", str(yaml_file)])


def test_old_spellings_still_work_with_a_deprecation_line(tmp_path, capsys):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("mode: local\nfamily_option: {num_facts: 20}\n")
    cfg, _ = config_from_args(["--config", str(yaml_file), "--seed", "4", "--overwrite", "true"])
    assert (cfg.family_options, cfg.sample_seed, cfg.overwrite) == ({"num_facts": 20}, 4, True)
    warnings = capsys.readouterr().err
    assert "'family_option' is deprecated; use 'family_options'" in warnings
    assert "--seed is deprecated; use --sample-seed" in warnings and "--overwrite true is deprecated" in warnings


def test_a_partial_output_of_the_previous_version_resumes(tmp_path):
    """A `.partial` whose header names the settings `seed` and `family_option` (text values)."""
    cfg = config(tmp_path, family_options={"num_facts": 20}, sample_seed=3)
    with pytest.raises(KeyboardInterrupt):
        main(cfg, generate=ScriptedGenerator(fail_after_calls=1))
    partial = tmp_path / "out.jsonl.partial"
    header, *records = partial.read_text().splitlines()
    settings = json.loads(header)["settings"]
    settings["seed"] = settings.pop("sample_seed")
    settings["family_option"] = {"num_facts": "20"}
    del settings["family_options"]
    partial.write_text("\n".join([json.dumps({"settings": settings}), *records]) + "\n")
    resumed = ScriptedGenerator()
    main(cfg, generate=resumed)
    assert resumed.calls == [4, 2]  # the 6 of 10 items the first call did not do


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "mode is required"),
        ({"mode": "sideways"}, "mode='sideways' is not valid; choose one of"),
        ({"mode": "local", "batch_size": 0}, "batch_size=0 must be >= 1"),
        ({"mode": "local", "batch_size": True}, "batch_size=True is not valid; expected int"),
        ({"mode": "local", "num_samples": 3}, "num_samples=3 with temperature=0"),
        ({"mode": "local", "family": "nope"}, "family='nope' is not a task family"),
    ],
)
def test_bad_options_name_the_field_the_value_and_the_fix(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        AugmentConfig(**options)


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
    assert cli(["--mode", "local", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert cli(["--mode", "oracle", "--family-option", "num_facts=3", "--output", str(tmp_path / "x.jsonl")]) == 1
    assert "num_facts=3" in capsys.readouterr().err


def test_help_is_fast_and_imports_no_heavy_library():
    code = (
        "import sys; from augment.__main__ import cli\ntry: cli(['--help'])\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--context-token-budget" in result.stdout and result.stdout.strip().endswith("[]")


def test_icl_ft_cli_delegates_to_augment(tmp_path):
    from icl_ft.cli import main as icl_ft_main

    assert icl_ft_main(["augment", "--mode", "oracle", "--output", str(tmp_path / "o.jsonl")]) == 0
    assert len(read_jsonl(tmp_path / "o.jsonl")) == 200
