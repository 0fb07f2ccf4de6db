"""`hf-prefix` (icl_ft/prefix_scorer.py) scores exactly like lm-eval's `hf`, only faster.

Tiny random models have near-uniform attention, so a wrong attention mask or position
would barely move their scores; the `sharp_model` fixture (tests/conftest.py) scales their
weights up so that every such mistake shows (a mask that lets tree tokens see each other
moves scores by ~0.1, far above the tolerance). Every architecture of tests/tiny_models.py is covered: full
attention, sliding-window and hybrid caches (prompts several windows long), and
linear-attention hybrids; each test first checks which path the load-time probe chose,
so a silent fallback to `hf` fails in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_models import (
    FULL_ATTENTION_ARCHITECTURES,
    LINEAR_ATTENTION_ARCHITECTURES,
    SLIDING_WINDOW,
    SLIDING_WINDOW_ARCHITECTURES,
    save_random_lora,
)

pytestmark = pytest.mark.internals

TOLERANCE = 1e-4  # fp32; hf and hf-prefix differ only in summation order
TREE, SEQUENTIAL = "tree attention", "one suffix per forward"
EXPECTED_MODE = {
    **dict.fromkeys(FULL_ATTENTION_ARCHITECTURES + SLIDING_WINDOW_ARCHITECTURES, TREE),
    **dict.fromkeys(LINEAR_ATTENTION_ARCHITECTURES, SEQUENTIAL),
}
NUM_SHORT_REQUESTS = 3  # the last requests of `_requests`, which share no prefix


def _requests(num_queries: int = 4):
    """ICL-style requests sharing a long facts prefix, plus short ones that share nothing."""
    from lm_eval.api.instance import Instance

    from lm_eval_tasks.api import generate_family

    data = generate_family("reversal", seed=0)
    facts = "".join(f"{fact}\n" for fact in data.icl_facts[:30]) + "\n"
    pairs = [
        (facts + row["query"], " " + choice) for row in data.tests["forward"][:num_queries] for choice in row["choices"]
    ]
    pairs += [
        (facts + data.tests["reverse"][0]["query"], " x"),  # one-token continuation
        (facts.rstrip("\n"), "\n\nfemp"),  # continuation starts inside the shared text's whitespace
        ("glon are", " heavier than femp."),
        ("Did you know", " that"),
        ("", "an empty context"),
    ]
    return [Instance("loglikelihood", {}, pair, index) for index, pair in enumerate(pairs)]


def _models(path, expected_mode: str | None = TREE, **kwargs):
    """(hf, hf-prefix) on `path`; fails at once if the probe did not choose `expected_mode`."""
    from lm_eval.models.huggingface import HFLM

    from icl_ft.prefix_scorer import PrefixCachingHFLM

    common = {"pretrained": str(path), "device": "cpu", "dtype": "float32", "batch_size": 2, **kwargs}
    # Small packs so that several packs and trees are exercised on a few requests.
    prefix = PrefixCachingHFLM(prefix_min_tokens=16, prefix_pack_tokens=24, **common)
    assert prefix.prefix_reuse.mode == expected_mode, prefix.prefix_reuse.describe()
    return HFLM(**common), prefix


def _assert_same(expected, actual):
    assert len(expected) == len(actual)
    for (ll_hf, greedy_hf), (ll_prefix, greedy_prefix) in zip(expected, actual, strict=True):
        assert abs(ll_hf - ll_prefix) <= TOLERANCE, (ll_hf, ll_prefix)
        assert greedy_hf == greedy_prefix


def _max_difference(expected, actual) -> float:
    return max(abs(a[0] - b[0]) for a, b in zip(expected, actual, strict=True))


# --- planning (pure functions) ---------------------------------------------------------


def test_plan_groups_requests_by_shared_cacheable_prefix():
    from icl_ft.prefix_tree import plan_prefix_groups

    shared = list(range(100, 120))
    inputs = [shared + [1, 2], [5, 6, 7], shared + [3], shared + [1, 9, 9], [5, 6, 8]]
    groups, rest = plan_prefix_groups(inputs, scored_lengths=[1, 1, 1, 2, 1], min_prefix_tokens=10)
    assert sorted(rest) == [1, 4]
    (group,) = groups
    assert sorted(group.members) == [0, 2, 3]
    # Capped by request 2 (21 tokens, its last one scored), not by the 20 shared tokens + [1].
    assert group.prefix_len == 20
    for member in group.members:  # every scored position stays outside the cached prefix
        assert group.prefix_len <= len(inputs[member]) - [1, 1, 1, 2, 1][member]


def test_plan_never_groups_below_the_minimum():
    from icl_ft.prefix_tree import plan_prefix_groups

    inputs = [[1] * 9 + [2], [1] * 9 + [3]]
    assert plan_prefix_groups(inputs, [1, 1], min_prefix_tokens=10) == ([], [0, 1])
    assert plan_prefix_groups([], [], 10) == ([], [])


def test_token_tree_shares_common_tokens_and_masks_siblings():
    from icl_ft.prefix_tree import TokenTree, pack_suffixes

    tree = TokenTree()
    for suffix in ([7, 8, 9], [7, 8, 4], [7, 8, 9]):
        tree.add(suffix)
    assert tree.tokens == [7, 8, 9, 4]
    assert tree.depths == [0, 1, 2, 2]
    assert tree.paths == [[0, 1, 2], [0, 1, 3], [0, 1, 2]]
    mask = tree.ancestor_mask()
    assert mask[3].tolist() == [True, True, False, True]  # sees its ancestors, not its sibling
    assert mask[0].tolist() == [True, False, False, False]

    packs = pack_suffixes([[1, 2, 3], [1, 2, 4], [5, 6, 7], [9] * 10], max_tokens=5)
    assert [indices for indices, _ in packs] == [[0, 1], [2], [3]]  # an oversize suffix gets its own pack
    assert all(len(tree) <= 5 for indices, tree in packs if indices != [3])


def test_sliding_window_mask_hides_keys_a_window_back():
    from icl_ft.prefix_tree import TokenTree, tree_attention_mask

    tree = TokenTree()
    for suffix in ([1, 2, 3], [1, 4]):
        tree.add(suffix)  # nodes: 1 (depth 0), 2 (1), 3 (2), 4 (1)
    # A window-4 layer keeps the last 3 of 10 prefix tokens (positions 7, 8, 9).
    mask = tree_attention_mask(tree, prefix_len=10, cached=3, window=4)
    assert mask.shape == (4, 3 + 4)
    assert mask[0].tolist() == [True, True, True, True, False, False, False]  # position 10 sees 7..10
    assert mask[2].tolist() == [False, False, True, True, True, True, False]  # position 12 sees 9..12, not 4
    assert mask[3].tolist() == [False, True, True, True, False, False, True]  # sibling branch: 8, 9, node 1, itself
    full = tree_attention_mask(tree, prefix_len=10, cached=10, window=None)
    assert full[:, :10].all() and full[:, 10:].equal(tree.ancestor_mask())


# --- equality with hf on tiny models --------------------------------------------------


@pytest.mark.parametrize("architecture", list(EXPECTED_MODE))
def test_loglikelihoods_equal_hf(sharp_model, architecture, caplog):
    """Every cache type: full, sliding-window (prompts several windows long), hybrid, linear attention."""
    import logging

    hf, prefix = _models(sharp_model(architecture), EXPECTED_MODE[architecture])
    requests = _requests()
    if architecture in SLIDING_WINDOW_ARCHITECTURES:  # the hard case: the shared prefix outruns the window
        assert min(len(prefix.tok_encode(r.args[0])) for r in requests[:-NUM_SHORT_REQUESTS]) > 8 * SLIDING_WINDOW
    expected = hf.loglikelihood(requests, disable_tqdm=True)
    with caplog.at_level(logging.INFO, logger="icl_ft.prefix_scorer"):
        actual = prefix.loglikelihood(requests, disable_tqdm=True)
    _assert_same(expected, actual)
    # The shared-prefix path really ran; only the short requests went to hf's own code.
    assert prefix.prefix_requests == {
        f"prefix cache, {EXPECTED_MODE[architecture]}": len(requests) - NUM_SHORT_REQUESTS,
        "hf: no shared prefix of >= 16 tokens": NUM_SHORT_REQUESTS,
    }
    assert any("share a" in message for message in caplog.messages)


def test_sliding_layers_need_the_window_in_the_tree_mask(sharp_model, monkeypatch):
    """A custom 4D mask replaces the model's own masks: without our window, sliding layers see too far back."""
    import dataclasses

    from icl_ft import prefix_tree

    hf, prefix = _models(sharp_model("gemma3"))
    requests = _requests(num_queries=2)
    expected = hf.loglikelihood(requests, disable_tqdm=True)
    _assert_same(expected, prefix.loglikelihood(requests, disable_tqdm=True))

    layout = prefix.prefix_reuse.layout
    assert {window for window, _ in layout.kinds.values()} == {None, SLIDING_WINDOW}  # one mask per layer type
    windowless = prefix_tree.MaskLayout({kind: (None, layer) for kind, (_, layer) in layout.kinds.items()})
    monkeypatch.setattr(prefix, "prefix_reuse", dataclasses.replace(prefix.prefix_reuse, layout=windowless))
    assert _max_difference(expected, prefix.loglikelihood(requests, disable_tqdm=True)) > 1e-2


@pytest.mark.parametrize(
    "model_args", [{"attn_implementation": "eager"}, {"max_length": 200}], ids=["eager", "truncated"]
)
def test_eager_attention_and_left_truncation_equal_hf(sharp_model, model_args, caplog):
    # max_length below the prompt length: hf truncates every input from the left, so only
    # choices of equal token length still share a prefix.
    import logging

    hf, prefix = _models(sharp_model("llama"), **model_args)
    assert prefix._attention_implementation == model_args.get("attn_implementation", "sdpa")
    requests = _requests(num_queries=2)
    expected = hf.loglikelihood(requests, disable_tqdm=True)
    with caplog.at_level(logging.INFO, logger="icl_ft.prefix_scorer"):
        _assert_same(expected, prefix.loglikelihood(requests, disable_tqdm=True))
    assert any("share a" in message for message in caplog.messages)


def test_requests_without_shared_prefix_go_to_hf_unchanged(sharp_model, monkeypatch):
    from lm_eval.models.huggingface import HFLM

    hf, prefix = _models(sharp_model("llama"))
    seen = []
    original = HFLM._loglikelihood_tokens

    def spy(self, requests, **kwargs):
        if self is prefix:
            seen.append([request[0] for request in requests])
        return original(self, requests, **kwargs)

    monkeypatch.setattr(HFLM, "_loglikelihood_tokens", spy)
    requests = _requests()
    actual = prefix.loglikelihood(requests, disable_tqdm=True)
    assert len(seen) == 1 and sorted(seen[0]) == sorted(request.args for request in requests[-3:])
    _assert_same(hf.loglikelihood(requests, disable_tqdm=True), actual)


def test_prompt_learning_adapter_falls_back_to_hf_said_once_and_counted(tiny_model, tmp_path, caplog):
    """What hf-prefix cannot do is logged once with the reason and counted per request, also in model info."""
    import logging

    from peft import PrefixTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = tiny_model("llama")
    adapter = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base), PrefixTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM")
    )
    adapter.save_pretrained(tmp_path / "prefix-tuning")
    with caplog.at_level(logging.INFO, logger="icl_ft.prefix_scorer"):
        hf, prefix = _models(base, expected_mode=None, peft=str(tmp_path / "prefix-tuning"))
        requests = _requests(num_queries=1)
        _assert_same(hf.loglikelihood(requests, disable_tqdm=True), prefix.loglikelihood(requests, disable_tqdm=True))
        prefix.loglikelihood(requests, disable_tqdm=True)
    reason = "prompt-learning PEFT adapters bring their own past key values"
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and reason in warnings[0]
    assert prefix.prefix_requests == {f"hf: {reason}": 2 * len(requests)}
    info = prefix.get_model_info()["hf_prefix"]
    assert info["mode"] == "off" and info["reason"] == reason and info["requests"] == prefix.prefix_requests


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
def test_lora_adapter_scores_equal_hf(sharp_model, tmp_path, architecture):
    base = sharp_model(architecture)
    save_random_lora(base, tmp_path / "adapter")

    requests = _requests(num_queries=2)
    hf, prefix = _models(base, peft=str(tmp_path / "adapter"))
    with_adapter = hf.loglikelihood(requests, disable_tqdm=True)
    _assert_same(with_adapter, prefix.loglikelihood(requests, disable_tqdm=True))
    base_scores = _models(base)[0].loglikelihood(requests, disable_tqdm=True)
    assert _max_difference(with_adapter, base_scores) > 0.1  # the adapter is live


def test_model_args_are_validated(sharp_model):
    from icl_ft.prefix_scorer import PrefixCachingHFLM

    with pytest.raises(ValueError, match="prefix_pack_tokens must be a positive integer"):
        PrefixCachingHFLM(pretrained=str(sharp_model("llama")), device="cpu", prefix_pack_tokens=0)


@pytest.mark.parametrize("architecture", ["llama", "mistral", "gemma3", "lfm2"])
def test_generation_reuses_the_shared_prefix(sharp_model, monkeypatch, architecture):
    from lm_eval.api.instance import Instance

    hf, prefix = _models(sharp_model(architecture), EXPECTED_MODE[architecture], batch_size=1)
    facts = "".join(f"fact {i}: glon are heavier than femp.\n" for i in range(20))
    requests = [
        Instance("generate_until", {}, (facts + query, {"until": ["\n"], "max_gen_toks": 8, "do_sample": False}), i)
        for i, query in enumerate(["snopt are", "krawu are", "glon are"])
    ]
    built = []
    original = type(prefix)._prefix_cache
    monkeypatch.setattr(
        type(prefix),
        "_prefix_cache",
        lambda self, tokens, reuse: built.append(len(tokens)) or original(self, tokens, reuse),
    )
    assert prefix.generate_until(requests, disable_tqdm=True) == hf.generate_until(requests, disable_tqdm=True)
    assert len(built) == 1 and built[0] >= 16  # built once (at the second request), reused by the third
    assert prefix._generation_prefix is None  # freed after the call


# --- lm-eval integration: zero-flag registration --------------------------------------


def _run(command, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, **kwargs)


def test_registration_keeps_builtin_models():
    """Importing our module first (the registry pitfall) must not hide lm-eval's own models."""
    code = (
        "import icl_ft.prefix_scorer\n"
        "from lm_eval.api.registry import get_model\n"
        "print(get_model('hf').__name__, get_model('hf-prefix').__name__, get_model('dummy').__name__)"
    )
    result = _run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["HFLM", "PrefixCachingHFLM", "DummyLM"]


@pytest.mark.integration
@pytest.mark.parametrize("model", ["hf-prefix", "hf"])
def test_lm_eval_cli_runs_with_no_extra_flag(tiny_model, tmp_path, model):
    lm_eval = Path(sys.executable).with_name("lm_eval")
    # hf-prefix with a chat template too: the system/user header becomes part of the shared prefix.
    chat = ["--apply_chat_template"] if model == "hf-prefix" else []
    result = _run(
        [
            str(lm_eval),
            "--model",
            model,
            "--model_args",
            f"pretrained={tiny_model('llama')}",
            "--tasks",
            "icl_ft_reversal_forward_icl",
            "--limit",
            "4",
            "--device",
            "cpu",
            "--batch_size",
            "1",
            "--output_path",
            str(tmp_path),
            *chat,
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(f"{model} (")  # lm-eval's summary line names the model
    assert ("shared prefix cached" in result.stderr) == (model == "hf-prefix")  # our progress bar
    assert "icl_ft_reversal_forward_icl" in result.stdout
    (results_file,) = tmp_path.rglob("results_*.json")
    config = json.loads(results_file.read_text())["config"]
    if model == "hf-prefix":  # how every request was scored, in the results file
        assert config["hf_prefix"]["mode"] == "tree attention"
        assert config["hf_prefix"]["requests"] == {"prefix cache, tree attention": 2 * 4}  # 4 docs, 2 choices
    else:
        assert "hf_prefix" not in config


# --- the real model -------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_icl_scores_equal_hf(smollm2_path):
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from icl_ft.prefix_scorer import PrefixCachingHFLM

    scores = []
    for cls in (HFLM, PrefixCachingHFLM):
        lm = cls(pretrained=str(smollm2_path), device="cpu", dtype="float32", batch_size=1)
        if cls is PrefixCachingHFLM:
            assert lm.prefix_reuse.mode == "tree attention", lm.prefix_reuse.describe()
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=["icl_ft_reversal_forward_icl"],
            limit=1,
            log_samples=True,
            task_manager=TaskManager(include_defaults=False),
        )
        scores.append([resp[0] for s in results["samples"]["icl_ft_reversal_forward_icl"] for resp in s["resps"]])
    expected, actual = scores
    assert len(expected) == 2  # one doc, two choices
    _assert_same([tuple(x) for x in expected], [tuple(x) for x in actual])


def test_hook_warns_and_leaves_registry_alone_if_internals_changed(monkeypatch):
    import lm_eval.models  # noqa: F401  (the built-in table, as `get_model` would import it)
    from lm_eval.api.registry import model_registry

    from icl_ft import _lm_eval_hook

    def broken(*args, **kwargs):
        raise TypeError("register() got an unexpected keyword argument 'target'")

    monkeypatch.setattr(model_registry, "_objs", {k: v for k, v in model_registry._objs.items() if k != "hf-prefix"})
    monkeypatch.setattr(model_registry, "register", broken)
    monkeypatch.setattr(_lm_eval_hook, "_warned", False)
    with pytest.warns(UserWarning, match="could not register the hf-prefix model"):
        _lm_eval_hook.register_models(lm_eval.models)
    assert "hf-prefix" not in model_registry and "hf" in model_registry
