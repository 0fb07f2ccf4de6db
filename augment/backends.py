"""Generation back ends. A back end is any callable `generate(prompts, params) -> list[str]`.

It returns, for each prompt, the text the model wrote after it (without the prompt). That
is all the augmentation code needs, so tests pass a scripted fake instead of a model.
Optional extras a back end may offer, used when present:

- `name`: recorded as the generator of every row;
- `count_tokens(text) -> int`: exact token counts for the global context budget;
- `generate_with_prefix(prefix, suffixes, params, reuse_cache=True)`: prompts that share
  one long prefix, computing its KV cache once (`HFGenerator`).

`HFGenerator` (transformers, default) batches prompts with left padding; `VLLMGenerator`
(`pip install 'lm-eval-icl-ft[vllm]'`) is for users with a GPU: vLLM's automatic prefix
caching shares the global context's KV cache by itself.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

# The shared prefix runs through the model in chunks of this many tokens (bounds attention memory).
PREFIX_CHUNK_TOKENS = 1024


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_new_tokens: int = 96
    seed: int = 0  # sampling seed of this call (back ends without per-prompt seeds)
    stop_strings: tuple[str, ...] = ()  # generation of a prompt ends after one of these
    # One sampling seed per prompt: a prompt's draws then depend on its own seed only, not on
    # which other prompts share its batch (what makes a resumed augmentation exact).
    prompt_seeds: tuple[int, ...] | None = None

    def seeds_of(self, indices: list[int]) -> list[int]:
        """The seeds of the prompts at `indices` (`seed` + index where no per-prompt seeds were given)."""
        if self.prompt_seeds is None:
            return [self.seed + index for index in indices]
        return [self.prompt_seeds[index] for index in indices]


def per_prompt_sampler(seeds: list[int], temperature: float, top_p: float):
    """A logits processor that turns greedy decoding into sampling with one random stream per row.

    transformers' sampling draws from one global generator for the whole batch, so what a row
    gets depends on its batch neighbours. Here each row adds Gumbel noise from its own seeded
    generator to its temperature- and top-p-warped logits; the argmax (greedy decoding) of
    that is an exact sample of the warped distribution (the Gumbel-max trick).
    """
    import torch
    from transformers import LogitsProcessor, TemperatureLogitsWarper, TopPLogitsWarper

    class PerPromptGumbelSampler(LogitsProcessor):
        def __init__(self):
            self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
            self.warpers = [TemperatureLogitsWarper(temperature)] + ([TopPLogitsWarper(top_p)] if top_p < 1 else [])

        def __call__(self, input_ids, scores):
            scores = scores.float()
            for warper in self.warpers:
                scores = warper(input_ids, scores)
            uniform = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.generators])
            gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(torch.float32).tiny)))
            return scores + gumbel.to(scores.device)

    return PerPromptGumbelSampler()


Generator = Callable[[list[str], SamplingParams], list[str]]


class BackendError(RuntimeError):
    """A back end cannot be used; the message says what to install or change."""


class HFGenerator:
    """Batched generation with a transformers causal LM on CPU (or whatever device torch picks)."""

    def __init__(self, model_path: str, dtype: str = "auto", batch_size: int = 8):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = str(model_path)
        self.batch_size = batch_size
        # Left padding: every prompt of a batch then ends at the same position, where generation starts.
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch_dtype)
        self.model.eval()
        self._prefix_memo = None  # (prefix text, its token ids, its KV cache)
        logger.info("loaded %s (%s) for generation", model_path, self.model.dtype)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _generate_kwargs(self, params: SamplingParams, indices: list[int]) -> dict[str, Any]:
        """generate() arguments for the prompts at `indices`: greedy, or sampled by `per_prompt_sampler`."""
        from transformers import LogitsProcessorList

        # The checkpoint's generation_config may set sampling values that greedy ignores (and warns about).
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": False,
            "temperature": None,
            "top_p": None,
            "top_k": None,
        }
        if params.temperature > 0:
            sampler = per_prompt_sampler(params.seeds_of(indices), params.temperature, params.top_p)
            kwargs["logits_processor"] = LogitsProcessorList([sampler])
        if params.stop_strings:
            kwargs.update(stop_strings=list(params.stop_strings), tokenizer=self.tokenizer)
        return kwargs

    def _decode_new(self, sequences, prompt_length: int) -> list[str]:
        return self.tokenizer.batch_decode(sequences[:, prompt_length:], skip_special_tokens=True)

    def __call__(self, prompts: list[str], params: SamplingParams) -> list[str]:
        import torch

        outputs: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = self.tokenizer(prompts[start : start + self.batch_size], return_tensors="pt", padding=True)
            indices = list(range(start, min(start + self.batch_size, len(prompts))))
            with torch.no_grad():
                sequences = self.model.generate(**batch, **self._generate_kwargs(params, indices))
            outputs += self._decode_new(sequences, batch["input_ids"].shape[1])
        return outputs

    def generate_with_prefix(
        self, prefix: str, suffixes: list[str], params: SamplingParams, reuse_cache: bool = True
    ) -> list[str]:
        """Generate after prefix + suffix for each suffix, up to `batch_size` suffixes at a time.

        With `reuse_cache` the prefix's KV cache is computed once (and kept for the next call
        with the same prefix); each batch continues from a fork of it repeated per row, since
        generation extends the cache it is given. Without, every row recomputes the prefix.
        Both read the same token ids (prefix and suffix tokenized apart), so greedy outputs agree.
        Whether (and how) this model continues a cache is probed once (`icl_ft_common.kv_cache`);
        a model that cannot recomputes, with one warning.

        Padding goes between the shared prefix and each suffix, not at the left: the prefix
        then sits at the same positions in every row, as in its cache, and generate() numbers
        positions from the attention mask, so each suffix still starts at len(prefix). Only
        full attention ignores such padding exactly: a sliding window counts the padded slots
        and a convolution or recurrent state runs through them, so on those models a batch
        holds suffixes of one token length only (`_batches`).
        """
        import torch

        reuse = self.cache_reuse if reuse_cache else None
        prefix_ids, prefix_cache = self._prefix_state(prefix, reuse)
        tokenized = [self.tokenizer(suffix, add_special_tokens=False)["input_ids"] for suffix in suffixes]
        outputs: list[str | None] = [None] * len(suffixes)
        for indices in self._batches([len(ids) for ids in tokenized]):
            batch = [tokenized[i] for i in indices]
            width = max(len(ids) for ids in batch)
            padding = [width - len(ids) for ids in batch]
            suffix_ids = torch.tensor([[self.tokenizer.pad_token_id] * pad + ids for pad, ids in zip(padding, batch)])
            suffix_mask = torch.tensor([[0] * pad + [1] * len(ids) for pad, ids in zip(padding, batch)])
            input_ids = torch.cat([prefix_ids.expand(len(batch), -1), suffix_ids], dim=1)
            attention_mask = torch.cat([torch.ones_like(prefix_ids).expand(len(batch), -1), suffix_mask], dim=1)
            cache = {} if reuse is None else reuse.kwargs(reuse.fork_rows(prefix_cache, len(batch)))
            with torch.no_grad():
                generate_kwargs = self._generate_kwargs(params, indices)
                sequences = self.model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, **cache, **generate_kwargs
                )
            for index, text in zip(indices, self._decode_new(sequences, input_ids.shape[1]), strict=True):
                outputs[index] = text
        return outputs

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices of the suffixes generated together: in order, or by equal length where padding is not exact."""
        if self.padding_is_ignored:
            return [
                list(range(start, min(start + self.batch_size, len(lengths))))
                for start in range(0, len(lengths), self.batch_size)
            ]
        by_length: dict[int, list[int]] = {}
        for index, length in enumerate(lengths):
            by_length.setdefault(length, []).append(index)
        return [
            group[start : start + self.batch_size]
            for group in by_length.values()
            for start in range(0, len(group), self.batch_size)
        ]

    @functools.cached_property
    def padding_is_ignored(self) -> bool:
        """Whether padded slots inside a row leave the other tokens' results unchanged (full attention only).

        Read from the cache the model builds for two tokens: every layer keeps plain keys and
        values, with no sliding window and no convolution or recurrent state.
        """
        import torch

        from icl_ft_common.kv_cache import keeps_only_keys_and_values, returned_cache

        with torch.no_grad():
            cache = returned_cache(
                self.model(input_ids=torch.tensor([[0, 0]], device=self.model.device), use_cache=True)
            )
        layers = getattr(cache, "layers", None)
        return bool(layers) and all(
            keeps_only_keys_and_values(layer) and getattr(layer, "sliding_window", None) is None for layer in layers
        )

    @functools.cached_property
    def cache_reuse(self):
        """How this model continues a prefix cache in batches (a CacheReuse), or None if it cannot; probed once."""
        from icl_ft_common.kv_cache import CacheReuseUnsupported, probe_cache_reuse

        try:
            reuse = probe_cache_reuse(
                self.model, self.model.get_input_embeddings().num_embeddings, self.model.device, self.model.dtype
            )
        except CacheReuseUnsupported as error:
            reason = str(error)
        else:
            if reuse.batches:
                logger.info("prefix KV cache reuse: %s", reuse.describe())
                return reuse
            reason = "a prefix cache repeated into a batch does not continue each row exactly"
        logger.warning(
            "%s cannot reuse the shared prefix's KV cache (%s): every prompt recomputes it", self.name, reason
        )
        return None

    def _prefix_state(self, prefix: str, reuse):
        """(token ids, KV cache or None) of `prefix`; the cache of the last prefix is kept."""
        from icl_ft_common.kv_cache import prefill

        if self._prefix_memo is None or self._prefix_memo[0] != prefix:
            self._prefix_memo = (prefix, self.tokenizer(prefix, return_tensors="pt")["input_ids"], None)
        _, prefix_ids, prefix_cache = self._prefix_memo
        if reuse is not None and prefix_cache is None:
            import inspect

            import torch

            # Logits of the last position only (where the model can): not context x vocabulary floats.
            keep_last = (
                {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(self.model.forward).parameters else {}
            )
            with torch.no_grad():
                prefix_cache = prefill(
                    lambda **kwargs: self.model(**kwargs, **keep_last),
                    prefix_ids.to(self.model.device),
                    reuse,
                    chunk_tokens=PREFIX_CHUNK_TOKENS,
                )
            logger.info("computed the KV cache of a %d-token shared prefix", prefix_ids.shape[1])
            self._prefix_memo = (prefix, prefix_ids, prefix_cache)
        return prefix_ids, prefix_cache if reuse is not None else None


class VLLMGenerator:
    """vLLM back end (optional extra). Prefix caching makes the shared global context cheap."""

    def __init__(self, model_path: str, dtype: str = "auto", batch_size: int = 8):
        try:
            import vllm
        except ImportError:
            raise BackendError(
                "backend=vllm needs vLLM, which is not installed: pip install 'lm-eval-icl-ft[vllm]' "
                "(or use backend=hf)"
            ) from None
        self._vllm = vllm
        self.name = str(model_path)
        # batch_size does not apply: vLLM schedules its own batches.
        self.llm = vllm.LLM(model=str(model_path), dtype=dtype, enable_prefix_caching=True)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.get_tokenizer().encode(text, add_special_tokens=False))

    def __call__(self, prompts: list[str], params: SamplingParams) -> list[str]:
        sampling = [
            self._vllm.SamplingParams(
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_new_tokens,
                stop=list(params.stop_strings) or None,
                seed=seed,
            )
            for seed in params.seeds_of(list(range(len(prompts))))
        ]  # one seed per prompt: vLLM then samples each request on its own generator
        return [result.outputs[0].text for result in self.llm.generate(prompts, sampling)]


BACKENDS = {"hf": HFGenerator, "vllm": VLLMGenerator}


def load_generator(backend: str, model_path: str, dtype: str = "auto", batch_size: int = 8) -> Generator:
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    try:
        return BACKENDS[backend](model_path, dtype=dtype, batch_size=batch_size)
    except BackendError:
        raise
    except Exception as err:  # noqa: BLE001 - a directory that passed the checks but does not load (corrupt weights)
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BackendError(f"--model {model_path} cannot be loaded ({first_line}); check the directory") from None
