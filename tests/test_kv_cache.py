"""The cache-reuse probe (icl_ft_common/kv_cache.py) decides from what a model does, on every cache type.

The installed transformers reads `cache=` (>= 5.24) or `past_key_values=` (5.0-5.23); the
older behaviour is reproduced by a forward that ignores `cache=`, as transformers 5.23 does
(it lands in **kwargs unused).
"""

from __future__ import annotations

import warnings

import pytest

from tests.tiny_models import LINEAR_ATTENTION_ARCHITECTURES, SLIDING_WINDOW_ARCHITECTURES

pytestmark = pytest.mark.internals


def _load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype="float32").eval()


def _probe(forward, model, **kwargs):
    from icl_ft_common.kv_cache import probe_cache_reuse

    return probe_cache_reuse(forward, model.get_input_embeddings().num_embeddings, model.device, model.dtype, **kwargs)


@pytest.mark.parametrize(
    "architecture", ["llama", "gpt2", *SLIDING_WINDOW_ARCHITECTURES, *LINEAR_ATTENTION_ARCHITECTURES]
)
def test_probe_finds_the_installed_argument_and_how_to_fork(tiny_model, architecture):
    import transformers
    from packaging.version import Version

    model = _load(tiny_model(architecture))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the deprecated name is never tried first on >= 5.24
        reuse = _probe(model, model, prefix_tokens=24)  # longer than the tiny sliding window
    assert reuse.argument == ("cache" if Version(transformers.__version__) >= Version("5.24") else "past_key_values")
    # Attention layers rebind their tensors (forks share them); convolution/recurrent states are written in place.
    assert reuse.clone_tensors == (architecture in LINEAR_ATTENTION_ARCHITECTURES)
    assert reuse.batches


def test_probe_falls_back_to_past_key_values_where_cache_is_ignored(tiny_model):
    """transformers 5.0-5.23: `cache=` is swallowed by **kwargs, only `past_key_values=` continues a cache."""
    import inspect

    model = _load(tiny_model("llama"))
    new_name = "cache" if "cache" in inspect.signature(model.forward).parameters else None

    def older_forward(**kwargs):
        kwargs.pop("cache", None)  # ignored, as an unknown keyword
        if new_name and "past_key_values" in kwargs:
            kwargs[new_name] = kwargs.pop("past_key_values")
        return model(**kwargs)

    assert _probe(older_forward, model).argument == "past_key_values"


def test_probe_refuses_a_model_that_ignores_the_cache(tiny_model):
    from icl_ft_common.kv_cache import CacheReuseUnsupported

    model = _load(tiny_model("llama"))

    def forgetful(**kwargs):
        for name in ("cache", "past_key_values"):
            kwargs.pop(name, None)
        return model(**kwargs)

    with pytest.raises(CacheReuseUnsupported, match="does not continue a cache passed as `cache` or `past_key_values`"):
        _probe(forgetful, model)

    def cacheless(**kwargs):
        return model(**{**kwargs, "use_cache": False})

    with pytest.raises(CacheReuseUnsupported, match="returns no cache"):
        _probe(cacheless, model)


def test_probe_refuses_a_cache_that_continues_wrongly(tiny_model):
    """A model that takes the cache but computes something else (here: positions restarting at 0) is caught."""
    import torch

    from icl_ft_common.kv_cache import CacheReuseUnsupported, cache_length

    model = _load(tiny_model("llama"))

    def misplaced(**kwargs):
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if cache is not None and cache_length(cache):
            kwargs["position_ids"] = torch.arange(kwargs["input_ids"].shape[1])[None]
        return model(**kwargs)

    with pytest.raises(CacheReuseUnsupported, match="logits differ from a full forward"):
        _probe(misplaced, model)


def test_forks_leave_the_prefix_cache_untouched(tiny_model):
    """A recurrent layer writes its state in place: its forks must clone, attention forks may share."""
    import torch

    from icl_ft_common.kv_cache import fork_cache, returned_cache, state_tensors

    for architecture, in_place in (("llama", False), ("qwen3_next", True)):
        model = _load(tiny_model(architecture))
        reuse = _probe(model, model)
        with torch.no_grad():
            cache = returned_cache(model(input_ids=torch.arange(20, 40)[None], use_cache=True))
            before = [tensor.clone() for tensor in state_tensors(cache)]
            for clone_tensors in (True, False):
                model(
                    input_ids=torch.arange(50, 54)[None],
                    use_cache=True,
                    **reuse.kwargs(fork_cache(cache, clone_tensors)),
                )
                unchanged = all(torch.equal(a, b) for a, b in zip(before, state_tensors(cache), strict=True))
                assert unchanged == (clone_tensors or not in_place), (architecture, clone_tensors)


def test_hf_prefix_probe_rejects_tree_masks_that_are_not_exact(sharp_model, monkeypatch):
    """The tree path is chosen by comparing its logits with full forwards: a mask without the window fails."""
    from icl_ft import prefix_scorer, prefix_tree

    def windowless(config, cache):
        layout = prefix_tree.mask_layout(config, cache)
        return prefix_tree.MaskLayout({kind: (None, layer) for kind, (_, layer) in layout.kinds.items()})

    monkeypatch.setattr(prefix_scorer, "mask_layout", windowless)
    lm = prefix_scorer.PrefixCachingHFLM(pretrained=str(sharp_model("mistral")), device="cpu", dtype="float32")
    assert lm.prefix_reuse.mode == "one suffix per forward"
    assert "token-tree logits differ from full forwards" in lm.prefix_reuse.reason
