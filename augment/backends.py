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

import copy
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_new_tokens: int = 96
    seed: int = 0  # sampling seed of this call
    stop_strings: tuple[str, ...] = ()  # generation of a prompt ends after one of these


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

    def _generate_kwargs(self, params: SamplingParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": params.temperature > 0,
        }
        if params.temperature > 0:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        else:  # the checkpoint's generation_config may set sampling values that greedy ignores (and warns about)
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if params.stop_strings:
            kwargs.update(stop_strings=list(params.stop_strings), tokenizer=self.tokenizer)
        return kwargs

    def _decode_new(self, sequences, prompt_length: int) -> list[str]:
        return self.tokenizer.batch_decode(sequences[:, prompt_length:], skip_special_tokens=True)

    def __call__(self, prompts: list[str], params: SamplingParams) -> list[str]:
        import torch

        torch.manual_seed(params.seed)
        outputs: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = self.tokenizer(prompts[start : start + self.batch_size], return_tensors="pt", padding=True)
            with torch.no_grad():
                sequences = self.model.generate(**batch, **self._generate_kwargs(params))
            outputs += self._decode_new(sequences, batch["input_ids"].shape[1])
        return outputs

    def generate_with_prefix(
        self, prefix: str, suffixes: list[str], params: SamplingParams, reuse_cache: bool = True
    ) -> list[str]:
        """Generate after prefix + suffix for each suffix, `batch_size` suffixes at a time.

        With `reuse_cache` the prefix's KV cache is computed once (and kept for the next call
        with the same prefix); each batch continues from a copy of it repeated per row, since
        generation appends to the cache it is given. Without, every row recomputes the prefix.
        Both read the same token ids (prefix and suffix tokenized apart), so greedy outputs agree.

        Padding goes between the shared prefix and each suffix, not at the left: the prefix
        then sits at the same positions in every row, as in its cache, and generate() numbers
        positions from the attention mask, so each suffix still starts at len(prefix).
        """
        import torch

        torch.manual_seed(params.seed)
        prefix_ids, prefix_cache = self._prefix_state(prefix, reuse_cache)
        outputs = []
        for start in range(0, len(suffixes), self.batch_size):
            batch = [self.tokenizer(suffix, add_special_tokens=False)["input_ids"]
                     for suffix in suffixes[start : start + self.batch_size]]  # fmt: skip
            width = max(len(ids) for ids in batch)
            padding = [width - len(ids) for ids in batch]
            suffix_ids = torch.tensor([[self.tokenizer.pad_token_id] * pad + ids for pad, ids in zip(padding, batch)])
            suffix_mask = torch.tensor([[0] * pad + [1] * len(ids) for pad, ids in zip(padding, batch)])
            input_ids = torch.cat([prefix_ids.expand(len(batch), -1), suffix_ids], dim=1)
            attention_mask = torch.cat([torch.ones_like(prefix_ids).expand(len(batch), -1), suffix_mask], dim=1)
            cache = {}
            if reuse_cache:
                cache["past_key_values"] = copy.deepcopy(prefix_cache)
                cache["past_key_values"].batch_repeat_interleave(len(batch))
            with torch.no_grad():
                sequences = self.model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, **cache, **self._generate_kwargs(params)
                )
            outputs += self._decode_new(sequences, input_ids.shape[1])
        return outputs

    def _prefix_state(self, prefix: str, with_cache: bool):
        """(token ids, KV cache or None) of `prefix`; the cache of the last prefix is kept."""
        import torch
        from transformers import DynamicCache

        if self._prefix_memo is None or self._prefix_memo[0] != prefix:
            self._prefix_memo = (prefix, self.tokenizer(prefix, return_tensors="pt")["input_ids"], None)
        _, prefix_ids, prefix_cache = self._prefix_memo
        if with_cache and prefix_cache is None:
            prefix_cache = DynamicCache(config=self.model.config)
            with torch.no_grad():
                self.model(input_ids=prefix_ids, past_key_values=prefix_cache, use_cache=True)
            logger.info("computed the KV cache of a %d-token shared prefix", prefix_ids.shape[1])
            self._prefix_memo = (prefix, prefix_ids, prefix_cache)
        return prefix_ids, prefix_cache if with_cache else None


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
        sampling = self._vllm.SamplingParams(
            temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_new_tokens,
            stop=list(params.stop_strings) or None, seed=params.seed,
        )  # fmt: skip
        return [result.outputs[0].text for result in self.llm.generate(prompts, sampling)]


BACKENDS = {"hf": HFGenerator, "vllm": VLLMGenerator}


def load_generator(backend: str, model_path: str, dtype: str = "auto", batch_size: int = 8) -> Generator:
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[backend](model_path, dtype=dtype, batch_size=batch_size)
