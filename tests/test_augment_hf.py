"""The transformers back end on a tiny random model: batching, prefix-cache reuse, both modes end to end."""

from __future__ import annotations

import dataclasses
import json

import pytest

from augment import run as main
from augment.backends import BackendError, HFGenerator, SamplingParams, load_generator
from augment.config import AugmentConfig
from tests.tiny_models import SLIDING_WINDOW

pytestmark = [pytest.mark.integration, pytest.mark.internals]

GREEDY = SamplingParams(max_new_tokens=12)


@pytest.fixture(scope="module")
def generator(tiny_model):
    return HFGenerator(str(tiny_model("llama")), dtype="float32", batch_size=3)


def test_batched_left_padded_generation_equals_one_prompt_at_a_time(generator):
    prompts = ["femp are bigger than glon.", "Did you know that", "The relationships between glon, troff and yomp"]
    batched = generator(prompts, GREEDY)
    single = [generator([prompt], GREEDY)[0] for prompt in prompts]
    assert batched == single
    assert len(set(batched)) > 1  # the prompts do steer the (random) model


@pytest.mark.parametrize("architecture", ["llama", "mistral", "qwen2_hybrid", "gemma3", "lfm2", "qwen3_next"])
def test_prefix_cache_reuse_gives_the_same_greedy_outputs(tiny_model, monkeypatch, architecture):
    """Full, sliding-window (a prefix many windows long), hybrid and linear-attention caches."""
    generator = HFGenerator(str(tiny_model(architecture)), dtype="float32", batch_size=3)
    reuse = generator.cache_reuse  # probed once: checked first, so a model that cannot reuse fails at once
    assert reuse is not None and reuse.batches and reuse.argument in ("cache", "past_key_values")
    prefix = "Here are facts:\n" + "".join(f"femp are bigger than glon number {i}.\n" for i in range(30))
    # Different last tokens: a tiny random model's output depends mostly on them, so the outputs differ.
    suffixes = ["Now think about troff", "Now think about yomp and femp.", "Now think about glon:"]
    prefix_length = generator.count_tokens(prefix)
    assert prefix_length > 8 * SLIDING_WINDOW
    forward_lengths = []
    forward = generator.model.forward

    def counting_forward(*args, **kwargs):
        forward_lengths.append(kwargs["input_ids"].shape[1])
        return forward(*args, **kwargs)

    monkeypatch.setattr(generator.model, "forward", counting_forward)
    reused = generator.generate_with_prefix(prefix, suffixes[:2], GREEDY, reuse_cache=True)
    reused += generator.generate_with_prefix(prefix, suffixes[2:], GREEDY, reuse_cache=True)
    # the prefix is run through the model once, across calls; documents only feed their own tokens
    assert sum(length >= prefix_length for length in forward_lengths) == 1
    monkeypatch.undo()
    recomputed = generator.generate_with_prefix(prefix, suffixes, GREEDY, reuse_cache=False)
    assert reused == recomputed
    assert len(set(reused)) == len(suffixes)  # the suffixes steer the (random) model: equality is not trivial
    # and the same as generating from the whole prompt text
    assert reused == [generator([prefix + suffix], GREEDY)[0] for suffix in suffixes]


@pytest.mark.parametrize("architecture", ["llama", "mistral", "lfm2"])
def test_only_full_attention_batches_suffixes_of_different_lengths(tiny_model, architecture):
    """Padding inside a row is exact for full attention only; elsewhere batches hold one suffix length."""
    generator = HFGenerator(str(tiny_model(architecture)), dtype="float32", batch_size=3)
    assert generator.padding_is_ignored == (architecture == "llama")
    batches = generator._batches([5, 7, 5, 5, 7])
    assert sorted(i for batch in batches for i in batch) == [0, 1, 2, 3, 4]
    if architecture == "llama":
        assert batches == [[0, 1, 2], [3, 4]]
    else:
        assert batches == [[0, 2, 3], [1, 4]]


def test_sampling_is_seeded(generator):
    params = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=12, seed=3)
    prompts = ["femp are", "glon are"]
    assert generator(prompts, params) == generator(prompts, params)


@pytest.mark.parametrize("mode", ["local", "global"])
def test_modes_end_to_end_on_a_tiny_model(tiny_model, tmp_path, mode):
    cfg = AugmentConfig(
        mode=mode,
        family="reversal",
        model=str(tiny_model("llama")),
        output=str(tmp_path / "a.jsonl"),
        limit=3,
        max_new_tokens=8,
        batch_size=2,
        dtype="float32",
        context="facts",
    )
    summary = main(cfg)
    assert summary["generator"] == str(tiny_model("llama")) and summary["generations"] == 3
    assert summary["kept"] + sum(summary["dropped_by_reason"].values()) == summary["sentences"]
    rows = [json.loads(line) for line in open(cfg.output_path)]
    assert len(rows) == summary["kept"]
    if mode == "global":
        assert summary["global_context"]["tokens_counted_by"] == "tokenizer"
        assert summary["global_context"]["documents_shown"] == 100  # 100 facts fit the default budget


def test_vllm_backend_missing_is_a_clear_error():
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match=r"pip install 'lm-eval-icl-ft\[vllm\]'"):
            load_generator("vllm", "unused")
    else:
        pytest.skip("vLLM is installed")


@pytest.mark.slow
def test_smollm2_local_augmentation_keeps_restatements_of_the_fact(smollm2_path, tmp_path):
    from augment.items import source_items
    from augment.parsing import nonsense_words, words_of
    from lm_eval_tasks.api import generate_family

    cfg = AugmentConfig(
        mode="local",
        model=str(smollm2_path),
        output=str(tmp_path / "local.jsonl"),
        limit=8,
        max_new_tokens=64,
        batch_size=8,
        dtype="bfloat16",
    )
    summary = main(cfg)
    rows = [json.loads(line) for line in open(cfg.output_path)]
    assert rows and summary["dropped"] > 0  # a real model's answers need the filters, and some survive
    facts = {item.id: item.text for item in source_items(generate_family("reversal"))}
    for row in rows:
        assert nonsense_words(facts[row["source_id"]]) <= words_of(row["text"])
        assert row["kind"] in ("rephrase", "reversal") and row["prompt_version"] == "local-v1"


def test_sampling_gives_each_prompt_its_own_draws_whatever_its_batch(tiny_model):
    """Per-prompt seeds: a prompt's sample depends on its seed, not on batch size or batch neighbours."""
    prompts = ["femp are", "glon are", "Did you know that", "The relationships between", "yomp is"]
    params = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=10, prompt_seeds=(11, 12, 13, 14, 15))
    outputs = {
        size: HFGenerator(str(tiny_model("llama")), dtype="float32", batch_size=size)(prompts, params)
        for size in (1, 2, 5)
    }
    assert outputs[1] == outputs[2] == outputs[5]
    alone = HFGenerator(str(tiny_model("llama")), dtype="float32", batch_size=5)
    assert alone(prompts[3:], dataclasses.replace(params, prompt_seeds=(14, 15))) == outputs[5][3:]
    other_seeds = alone(prompts, dataclasses.replace(params, prompt_seeds=(21, 22, 23, 24, 25)))
    assert other_seeds != outputs[5]  # the seeds do steer the draws


def test_sampled_augmentation_resumed_after_any_cut_with_another_batch_size_equals_an_uninterrupted_run(
    tiny_model, tmp_path
):
    from augment.backends import HFGenerator as Generator

    model = str(tiny_model("llama"))
    settings = dict(
        mode="local",
        family="reversal",
        model=model,
        limit=5,
        max_new_tokens=10,
        dtype="float32",
        temperature=1.0,
        num_samples=2,
        sample_seed=7,
    )
    whole = AugmentConfig(**settings, batch_size=4, output=str(tmp_path / "whole.jsonl"))
    main(whole)

    class CutAfter(Generator):
        calls = 0

        def __call__(self, prompts, params):
            if CutAfter.calls == 2:
                raise KeyboardInterrupt  # Ctrl-C between two items of the run
            CutAfter.calls += 1
            return super().__call__(prompts, params)

    cut = AugmentConfig(**settings, batch_size=1, output=str(tmp_path / "cut.jsonl"))
    with pytest.raises(KeyboardInterrupt):
        main(cut, generate=CutAfter(model, dtype="float32", batch_size=1))
    assert not cut.output_path.exists()
    resumed = AugmentConfig(**settings, batch_size=3, output=str(tmp_path / "cut.jsonl"))
    main(resumed)
    for name in ("{}.jsonl", "{}.dropped.jsonl"):
        whole_text = (tmp_path / name.format("whole")).read_text()
        assert whole_text == (tmp_path / name.format("cut")).read_text()
    assert (tmp_path / "whole.dropped.jsonl").read_text() or (tmp_path / "whole.jsonl").read_text()
