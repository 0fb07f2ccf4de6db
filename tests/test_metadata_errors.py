"""Bad `--metadata` (and other data errors) reach the user as one line: a DataError in Python, one
stderr line and exit status 2 under the `lm_eval` command line. Keys lm-eval adds stay accepted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lm_eval_tasks.api import build_task_dataset, generate_family
from lm_eval_tasks.errors import DataError, called_from_lm_eval_cli, one_line_under_lm_eval
from lm_eval_tasks.metadata import coerce_option, model_context_tokens, run_model_args


def call_as(module: str, function_name: str, function, *args, **kwargs):
    """Call `function` from a frame that belongs to `module` (as lm-eval's own code would)."""
    scope = {"__name__": module, "target": function}
    exec(f"def {function_name}(*args, **kwargs):\n    return target(*args, **kwargs)\n", scope)  # noqa: S102
    return scope[function_name](*args, **kwargs)


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"num_factz": 4}, "unknown --metadata key(s) ['num_factz'] for the reversal tasks"),
        ({"seed": 1.5}, "option seed=1.5 must be of type integer"),
        ({"seed": True}, "option seed=True must be of type integer"),
        ({"num_facts": "many"}, "option num_facts='many' must be of type integer"),
        ({"num_facts": 2.0}, "option num_facts=2.0 must be of type integer"),
        ({"icl_context": 3}, "option icl_context=3 must be of type string"),
        ({"icl_context": "everything"}, "icl_context='everything'; choose one of ['facts', 'train']"),
        ({"icl_token_budget": -5}, "icl_token_budget=-5: must be >= 0"),
    ],
)
def test_bad_metadata_is_a_one_line_data_error_for_python_callers(metadata, message):
    with pytest.raises(DataError) as err:
        build_task_dataset(family="reversal", version=1.1, **metadata)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_valid_keys_are_named_in_the_error():
    with pytest.raises(DataError, match=r"valid keys: \['examples_per_fact', 'icl_context', 'icl_token_budget'"):
        build_task_dataset(family="reversal", num_factz=4)


def test_keys_lm_eval_adds_are_accepted_and_strings_are_typed():
    """The YAML's version and seed, the factory's config_source, common model args; "7" from --model_args."""
    docs = build_task_dataset(
        family="reversal",
        seed="7",
        version=1.1,
        config_source="x.yaml",
        pretrained="/m",
        dtype="float32",
        num_facts="10",
    )
    assert docs["forward"].num_rows == 10
    assert docs["forward"][0]["facts"] == generate_family("reversal", 7, num_facts=10).icl_facts


def test_model_args_of_the_running_evaluation_are_accepted():
    """Any --model_args entry, even one no list knows, when lm-eval's simple_evaluate runs with it."""
    with pytest.raises(DataError, match="my_backend_flag"):
        build_task_dataset(family="reversal", my_backend_flag="yes")
    scope = {"__name__": "lm_eval.evaluator", "build": build_task_dataset}
    exec(  # noqa: S102 -- a frame of lm-eval's evaluator, as when lm_eval runs the task
        "def simple_evaluate(model_args):\n    return build(family='reversal', my_backend_flag='yes', num_facts=4)\n",
        scope,
    )
    assert scope["simple_evaluate"]("pretrained=/x,my_backend_flag=yes")["forward"].num_rows == 4


def test_run_model_args_and_the_model_context_come_from_the_simple_evaluate_frame(tiny_model):
    scope = {"__name__": "lm_eval.evaluator", "args": run_model_args, "context": model_context_tokens}
    exec("def simple_evaluate(model_args):\n    return args(), context()\n", scope)  # noqa: S102
    model = str(tiny_model("llama"))
    found, (length, source) = scope["simple_evaluate"](f"pretrained={model},dtype=float32")
    assert found == {"pretrained": model, "dtype": "float32"}
    assert length == 4096 and model in source  # the tiny model's max_position_embeddings
    assert scope["simple_evaluate"]({"pretrained": model, "max_length": 1000})[1] == (
        1000,
        "--model_args max_length=1000",
    )
    assert run_model_args() == {} and model_context_tokens() == (None, "")  # no evaluation on the stack


def test_the_budget_follows_the_model_and_icl_and_ft_score_the_same_items(tiny_model):
    """A 512-token model cannot show all 100 reversal facts: uncovered items leave BOTH conditions."""
    scope = {"__name__": "lm_eval.evaluator", "build": build_task_dataset}
    exec("def simple_evaluate(model_args, **metadata):\n    return build(**metadata)\n", scope)  # noqa: S102
    args = {"pretrained": str(tiny_model("llama")), "max_length": 512}
    docs = scope["simple_evaluate"](args, family="reversal", version=1.1)
    assert 0 < docs["forward"].num_rows < 100
    facts = docs["forward"][0]["facts"]
    assert all(row["query"].split()[0] in " ".join(facts) for row in docs["forward"])  # each asked entity is shown
    again = scope["simple_evaluate"](args, family="reversal", version=1.1)
    assert again["reverse"]["id"] == docs["reverse"]["id"]  # deterministic: ICL and FT tasks agree


def test_one_line_under_the_lm_eval_cli_only(capsys):
    @one_line_under_lm_eval
    def data_function():
        raise DataError("source_dir /nowhere is not a directory;\n expected p2d_prompts_train.jsonl")

    with pytest.raises(DataError):  # a Python caller keeps the exception
        data_function()
    assert not called_from_lm_eval_cli()
    with pytest.raises(SystemExit) as exit_info:
        call_as("lm_eval._cli.run", "_execute", data_function)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "lm_eval: error: source_dir /nowhere is not a directory; expected p2d_prompts_train.jsonl\n"
    )


def test_programming_errors_keep_their_traceback():
    @one_line_under_lm_eval
    def broken():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        call_as("lm_eval._cli.run", "_execute", broken)


def test_coerce_option_is_strict():
    assert coerce_option("seed", 0, "7") == 7 and coerce_option("seed", 0, "-3") == -3
    assert coerce_option("budget", 1.0, 2) == 2.0 and coerce_option("flag", False, "true") is True
    for value in (1.5, "1.5", "seven", None, [1]):
        with pytest.raises(DataError):
            coerce_option("seed", 0, value)


def test_a_task_manager_caller_gets_the_exception():
    from lm_eval.tasks import TaskManager

    with pytest.raises(DataError, match="num_factz"):
        TaskManager(include_defaults=False, metadata={"num_factz": 4}).load(["icl_ft_reversal_forward_ft"])


def run_lm_eval(model, task: str, metadata: dict, cwd) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model}",
        "--tasks",
        task,
        "--device",
        "cpu",
        "--limit",
        "2",
        "--metadata",
        json.dumps(metadata),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False)


@pytest.mark.integration
@pytest.mark.parametrize(
    "task, metadata, message",
    [
        (
            "icl_ft_reversal_forward_ft",
            {"num_factz": 4},
            "lm_eval: error: unknown --metadata key(s) ['num_factz'] for the reversal tasks",
        ),
        (
            "icl_ft_reversal_curse_reverse_ft",
            {"source_dir": "/nowhere/june_version"},
            "lm_eval: error: source_dir /nowhere/june_version is not a directory; expected one with p2d_prompts_train",
        ),
    ],
)
def test_lm_eval_cli_prints_one_line_and_exits_2(tiny_model, tmp_path, task, metadata, message):
    """What `lm_eval ... --metadata` users see for a misspelt key or a missing original-files directory."""
    result = run_lm_eval(tiny_model("llama"), task, metadata, cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
