"""The process family's own augmentation prompts (FamilySpec.augment_prompts): augment picks them
for this family only, they render with the family's data, and `python -m augment` runs them end to
end with a scripted generator whose answers restate a rule and apply it step by step."""

from __future__ import annotations

import json

import pytest

from augment import run as run_augment
from augment.config import AugmentConfig
from augment.prompting import GLOBAL_PROMPT, LOCAL_PROMPT, prompt_for, render, split_shared_prefix, template_sha256
from lm_eval_tasks.api import generate_family


def test_process_brings_its_own_prompts_and_the_other_families_keep_the_generic_ones():
    local, global_ = prompt_for("local", "process"), prompt_for("global", "process")
    assert (local.version, local.package) == ("process-local-v1", "lm_eval_tasks.process")
    assert (global_.version, global_.answer_kind) == ("process-global-v1", "inference")
    assert template_sha256(local.version, local.package) != template_sha256(LOCAL_PROMPT.version)
    assert prompt_for("local", "reversal") == LOCAL_PROMPT and prompt_for("global", "syllogism") == GLOBAL_PROMPT
    assert prompt_for("oracle", "process") is None


def test_the_prompts_render_with_the_family_data_and_share_the_global_context_prefix():
    data = generate_family("process", 0)
    rule = data.icl_facts[7]  # the sum rule
    prompt = render(prompt_for("local", "process"), statement=rule)
    assert prompt.endswith(f"Statement: {rule}\nRephrasings:\n1.")
    assert "hulo" not in prompt.removesuffix(f"Statement: {rule}\nRephrasings:\n1.")  # demonstrations: another calculus
    spec = prompt_for("global", "process")
    documents = [row["text"] for row in data.train[-2:]]
    prefix, suffixes = split_shared_prefix(spec, documents, context=data.icl_facts)
    assert all(fact in prefix for fact in data.icl_facts)
    for document, suffix in zip(documents, suffixes):
        assert prefix + suffix == render(spec, context=data.icl_facts, document=document)


class ProcedureGenerator:
    """Answers as a model that follows the prompt: a restatement, then a rule step on a new expression."""

    name = "scripted-procedure"

    def __call__(self, prompts, params):
        outputs = []
        for prompt in prompts:
            if prompt.endswith("Rephrasings:\n1."):
                outputs.append(
                    " Sum rule of hulo: hulo[f + g] = hulo[f]*hulo[g].\nInferences:\n"
                    "1. By the sum rule, hulo[keku(x) + jeso(x)] = hulo[keku(x)]*hulo[jeso(x)].\n"
                    "2. By the table, hulo[keku(x)] = zorbel(x).\n\nStatement: The"
                )
            else:
                outputs.append(" By the product rule, hulo[keku(x)*ruja(x)] = hulo[keku(x)] + hulo[ruja(x)].\n\n")
        return outputs


@pytest.mark.parametrize("mode", ["local", "global"])
def test_augment_runs_the_process_prompts_end_to_end(tmp_path, mode):
    output = tmp_path / f"process-{mode}.jsonl"
    cfg = AugmentConfig(mode=mode, family="process", output=str(output), limit=3, batch_size=2)
    summary = run_augment(cfg, generate=ProcedureGenerator())
    assert summary["prompt_version"] == f"process-{mode}-v1" and summary["items"] == 3
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    kinds = {row["kind"] for row in rows}
    assert kinds == ({"rephrase", "inference"} if mode == "local" else {"inference"})
    assert all(row["prompt_version"] == f"process-{mode}-v1" for row in rows)
    if mode == "local":  # "zorbel" is no name of the calculus: the invented function is dropped, not kept
        assert not any("zorbel" in row["text"] for row in rows)
        # ... and the procedure statement (item 2) names no function, so its keku step is invented too.
        assert summary["dropped_by_reason"]["new_nonsense_word"] == 3 + 1
