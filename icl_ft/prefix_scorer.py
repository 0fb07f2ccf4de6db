"""`hf-prefix`: lm-eval's `hf` model that computes a shared prompt prefix once.

    lm_eval --model hf-prefix --model_args pretrained=MODEL[,peft=ADAPTER] --tasks icl_ft_reversal_icl --device cpu

The ICL condition puts every training fact before every question, so all requests of a
task share a prefix of 1,000-3,000 tokens. lm-eval's `hf` runs the whole prompt for
every request and takes a log-softmax over every position and the whole vocabulary.
This class accepts every `hf` argument (it subclasses `HFLM`) and changes only how
loglikelihood requests are computed:

1. Tokenization is `hf`'s own: `loglikelihood` and `_encode_pair` are inherited, and
   `_loglikelihood_tokens` receives the token ids `hf` would score. The model input is
   built as `hf` builds it, `(context + continuation)[-(max_length + 1):][:-1]`.
2. Requests whose inputs share at least `prefix_min_tokens` leading token ids are
   grouped (sorting the inputs makes them adjacent). The group's common prefix runs
   once, in chunks of `prefix_chunk_tokens`, into a KV cache.
3. The suffixes are scored in packs of at most `prefix_pack_tokens` tokens: a pack's
   suffixes are merged into a token tree (a question shared by several choices is
   computed once) and run as ONE sequence whose position ids are the tree depths and
   whose attention mask lets each token see the prefix and its own ancestors only
   ("tree attention"). Logits are computed at the continuation positions only, so
   nothing of size context x vocabulary is ever held. The cache is cropped back to the
   prefix after each pack instead of being copied.

Anything else goes to `hf` unchanged: requests without a long shared prefix, seq2seq
models, prompt-learning PEFT adapters (they inject their own past key values) and
models whose cache cannot be cropped back (sliding-window or linear-attention layers).
Log-likelihoods equal `hf`'s up to floating-point summation order (max abs difference
~1e-5 in fp32 on SmolLM2; see benchmarks/bench_prefix_scorer.py).

`generate_until` at batch size 1 reuses a prefix shared with the previous request
through `generate(past_key_values=...)`; batched generation (left padding shifts every
position) is `hf`'s.

This module imports lm_eval and torch at import time (it subclasses `HFLM`); lm-eval
imports it only when `--model hf-prefix` is asked for (see icl_ft/_lm_eval_hook.py).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from itertools import pairwise
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

if TYPE_CHECKING:
    from transformers import DynamicCache

logger = logging.getLogger(__name__)

MODEL_NAME = "hf-prefix"
# Attention implementations that honour a custom 4D mask with explicit position ids;
# others (flash attention, ...) get one suffix per forward and no mask.
TREE_ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager")


# --- planning: pure functions on token ids ------------------------------------------


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


@dataclasses.dataclass(frozen=True)
class PrefixGroup:
    """Requests (indices into the request list) whose inputs all start with the same `prefix_len` tokens."""

    members: tuple[int, ...]
    prefix_len: int


def plan_prefix_groups(
    inputs: list[list[int]], scored_lengths: list[int], min_prefix_tokens: int
) -> tuple[list[PrefixGroup], list[int]]:
    """Split requests into groups sharing >= `min_prefix_tokens` cacheable tokens, and the rest.

    A request's last `scored_length` input positions are never cached: their logits must
    come out of the suffix forward. Members of a group are in lexicographic order of their
    inputs, so suffixes that share tokens are neighbours (which the token tree exploits).
    """
    if not inputs:
        return [], []
    cacheable = [len(tokens) - scored for tokens, scored in zip(inputs, scored_lengths, strict=True)]
    order = sorted(range(len(inputs)), key=inputs.__getitem__)
    groups: list[PrefixGroup] = []
    rest: list[int] = []

    def close(run: list[int], shared: int) -> None:
        if len(run) > 1:
            groups.append(PrefixGroup(tuple(run), shared))
        else:
            rest.extend(run)

    run, run_shared = [order[0]], cacheable[order[0]]
    for previous, current in pairwise(order):
        # In sorted order the common prefix of a run is the minimum over adjacent pairs.
        shared = min(common_prefix_length(inputs[previous], inputs[current]), cacheable[previous], cacheable[current])
        if shared >= min_prefix_tokens:
            run.append(current)
            run_shared = min(run_shared, shared)
        else:
            close(run, run_shared)
            run, run_shared = [current], cacheable[current]
    close(run, run_shared)
    return groups, rest


class TokenTree:
    """Suffixes merged into a trie: shared leading tokens become one node.

    Nodes are numbered in insertion order, so a parent always precedes its children.
    `paths[k]` lists the node of each token of the k-th added suffix.
    """

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.parents: list[int] = []
        self.depths: list[int] = []
        self.paths: list[list[int]] = []
        self._children: dict[tuple[int, int], int] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    def new_nodes(self, suffix: list[int]) -> int:
        """How many nodes adding `suffix` would create."""
        node = -1
        for depth, token in enumerate(suffix):
            node = self._children.get((node, token))
            if node is None:
                return len(suffix) - depth
        return 0

    def add(self, suffix: list[int]) -> None:
        node, path = -1, []
        for depth, token in enumerate(suffix):
            child = self._children.get((node, token))
            if child is None:
                child = len(self.tokens)
                self._children[(node, token)] = child
                self.tokens.append(token)
                self.parents.append(node)
                self.depths.append(depth)
            node = child
            path.append(node)
        self.paths.append(path)

    def ancestor_mask(self) -> torch.Tensor:
        """[nodes, nodes] bool: row i is True at i and at every ancestor of i."""
        size = len(self.tokens)
        mask = torch.zeros(size, size, dtype=torch.bool)
        for node, parent in enumerate(self.parents):
            if parent >= 0:
                mask[node] = mask[parent]
            mask[node, node] = True
        return mask


def pack_suffixes(suffixes: list[list[int]], max_tokens: int) -> list[tuple[list[int], TokenTree]]:
    """Greedily fill token trees of at most `max_tokens` nodes (a longer suffix gets a tree alone).

    Returns (indices into `suffixes`, tree) pairs; `tree.paths` follows the indices' order.
    """
    packs: list[tuple[list[int], TokenTree]] = []
    indices: list[int] = []
    tree = TokenTree()
    for index, suffix in enumerate(suffixes):
        if indices and len(tree) + tree.new_nodes(suffix) > max_tokens:
            packs.append((indices, tree))
            indices, tree = [], TokenTree()
        indices.append(index)
        tree.add(suffix)
    if indices:
        packs.append((indices, tree))
    return packs


# --- the model ------------------------------------------------------------------------


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{MODEL_NAME}: {name} must be a positive integer, got {value!r}")
    return value


class PrefixCachingHFLM(HFLM):
    """`hf` with shared-prefix KV caching for loglikelihood requests (see module docstring).

    Extra model args (all optional): `prefix_min_tokens` (default 128; shorter shared
    prefixes are not worth a group), `prefix_chunk_tokens` (default 1024; bounds the
    attention memory of the prefix forward), `prefix_pack_tokens` (default 256; suffix
    tokens per forward, bounds the logits held at once).
    """

    def __init__(
        self,
        pretrained,
        prefix_min_tokens: int = 128,
        prefix_chunk_tokens: int = 1024,
        prefix_pack_tokens: int = 256,
        **kwargs,
    ) -> None:
        self.prefix_min_tokens = _positive_int("prefix_min_tokens", prefix_min_tokens)
        self.prefix_chunk_tokens = _positive_int("prefix_chunk_tokens", prefix_chunk_tokens)
        self.prefix_pack_tokens = _positive_int("prefix_pack_tokens", prefix_pack_tokens)
        super().__init__(pretrained, **kwargs)
        self._generation_prefix: tuple[list[int], DynamicCache] | None = None
        self._previous_generation_context: list[int] | None = None
        self._reported_unsupported = False

    # -- capabilities, decided once per model

    @functools.cached_property
    def _prefix_caching_unsupported(self) -> str | None:
        """Why this model cannot reuse a prefix cache (None if it can)."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        if self.backend != "causal":
            return "not a decoder-only model"
        peft_config = getattr(self.model, "active_peft_config", None)
        if peft_config is not None and peft_config.is_prompt_learning:
            return "prompt-learning PEFT adapters bring their own past key values"
        missing = {"past_key_values", "position_ids", "attention_mask"} - self._forward_parameters
        if missing:
            return f"the model's forward takes no {', '.join(sorted(missing))}"
        layers = DynamicCache(config=self.model.config).layers
        if any(type(layer) is not DynamicLayer for layer in layers):
            return "its sliding-window or linear-attention cache cannot be cropped back to a prefix"
        return None

    @functools.cached_property
    def _forward_parameters(self) -> set[str]:
        model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return set(inspect.signature(model.forward).parameters)

    @functools.cached_property
    def _attention_implementation(self) -> str | None:
        # The loaded model's config: HFLM.config is read separately and never learns the implementation.
        return getattr(self.model.config, "_attn_implementation", None)

    def _prefix_caching_enabled(self) -> bool:
        reason = self._prefix_caching_unsupported
        if reason is not None and not self._reported_unsupported:
            self._reported_unsupported = True
            logger.warning("%s: prefix caching is off for this model (%s); scoring as `hf` does", MODEL_NAME, reason)
        return reason is None

    # -- forward passes

    def _forward(
        self, input_ids: torch.Tensor, cache: DynamicCache, keep: int | torch.Tensor, **kwargs
    ) -> torch.Tensor:
        """Logits at the `keep` positions (an int keeps the last ones) after `input_ids`, extending `cache`."""
        takes_keep = "logits_to_keep" in self._forward_parameters
        if takes_keep:
            kwargs["logits_to_keep"] = keep
        with (
            torch.no_grad(),
            torch.autocast(
                device_type=self.device.type,
                dtype=self.mixed_precision_dtype,
                enabled=self.mixed_precision_dtype is not None,
            ),
        ):
            logits = self.model(input_ids=input_ids, past_key_values=cache, use_cache=True, **kwargs).logits
        if not takes_keep:
            logits = logits[:, -keep:] if isinstance(keep, int) else logits[:, keep.to(logits.device)]
        return logits

    def _prefix_cache(self, prefix: list[int]) -> DynamicCache:
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        for start in range(0, len(prefix), self.prefix_chunk_tokens):
            chunk = torch.tensor([prefix[start : start + self.prefix_chunk_tokens]], device=self.device)
            self._forward(chunk, cache, keep=1)
        return cache

    def _tree_logits(self, tree: TokenTree, scored_nodes: list[int], cache: DynamicCache) -> torch.Tensor:
        """Logits [len(scored_nodes), vocab] for a token tree that continues the cached prefix."""
        prefix_len = cache.get_seq_length()
        size = len(tree)
        kwargs = {}
        if self._attention_implementation in TREE_ATTENTION_IMPLEMENTATIONS:
            visible = torch.ones(size, prefix_len + size, dtype=torch.bool)
            visible[:, prefix_len:] = tree.ancestor_mask()
            if self._attention_implementation == "eager":  # eager adds the mask to the scores
                dtype = self.model.dtype
                visible = torch.zeros(visible.shape, dtype=dtype).masked_fill_(~visible, torch.finfo(dtype).min)
            kwargs["attention_mask"] = visible[None, None].to(self.device)
            kwargs["position_ids"] = torch.tensor([tree.depths], device=self.device) + prefix_len
        elif len(tree.paths) != 1:
            raise AssertionError("without tree attention a pack must hold exactly one suffix")
        try:
            keep = torch.tensor(scored_nodes, device=self.device)
            return self._forward(torch.tensor([tree.tokens], device=self.device), cache, keep=keep, **kwargs)[0]
        finally:
            cache.crop(-(cache.get_seq_length() - prefix_len))

    # -- loglikelihood

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        if not requests or not self._prefix_caching_enabled():
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        # Exactly the tokens `hf` feeds the model for each request (left-truncated the same way).
        inputs = [(context + continuation)[-(self.max_length + 1) :][:-1] for _, context, continuation in requests]
        groups, rest = plan_prefix_groups(
            inputs, [len(continuation) for _, _, continuation in requests], self.prefix_min_tokens
        )
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        if rest:
            answers = super()._loglikelihood_tokens(
                [requests[i] for i in rest], disable_tqdm=disable_tqdm, override_bs=override_bs
            )
            for index, answer in zip(rest, answers, strict=True):
                results[index] = answer
        if groups:
            with tqdm(
                total=sum(len(group.members) for group in groups),
                disable=disable_tqdm or self.rank != 0,
                desc="Running loglikelihood requests (shared prefix cached)",
            ) as pbar:
                for group in groups:
                    self._score_group(group, requests, inputs, results, pbar)
        return results

    def _score_group(self, group: PrefixGroup, requests, inputs, results, pbar) -> None:
        logger.info("%s: %d requests share a %d-token prefix", MODEL_NAME, len(group.members), group.prefix_len)
        cache = self._prefix_cache(inputs[group.members[0]][: group.prefix_len])
        suffixes = [inputs[i][group.prefix_len :] for i in group.members]
        pack_tokens = self.prefix_pack_tokens if self._attention_implementation in TREE_ATTENTION_IMPLEMENTATIONS else 1
        for positions, tree in pack_suffixes(suffixes, pack_tokens):
            members = [group.members[p] for p in positions]
            # The last len(continuation) nodes of a path predict the continuation's tokens.
            tails = [path[-len(requests[m][2]) :] for m, path in zip(members, tree.paths, strict=True)]
            scored_nodes = sorted({node for tail in tails for node in tail})
            logprobs = F.log_softmax(
                self._tree_logits(tree, scored_nodes, cache), dim=-1, dtype=self.softmax_dtype
            )  # [scored nodes, vocab]
            row_of = {node: row for row, node in enumerate(scored_nodes)}
            for member, tail in zip(members, tails, strict=True):
                request_str, _, continuation = requests[member]
                rows = logprobs[[row_of[node] for node in tail]]
                target = torch.tensor(continuation, dtype=torch.long, device=rows.device)
                is_greedy = bool((rows.argmax(dim=-1) == target).all())
                answer = (float(rows.gather(1, target[:, None]).sum()), is_greedy)
                results[member] = answer
                if request_str is not None:  # None for loglikelihood_rolling windows, as in `hf`
                    self.cache_hook.add_partial("loglikelihood", request_str, answer)
            pbar.update(len(members))

    # -- generation

    def generate_until(self, requests, disable_tqdm: bool = False):
        try:
            return super().generate_until(requests, disable_tqdm=disable_tqdm)
        finally:  # the prefix cache of one call is never useful to the next: free it
            self._generation_prefix = self._previous_generation_context = None

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs):
        cached = self._reusable_generation_prefix(context, generation_kwargs)
        if cached is None:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        prefix_len, cache = cached
        try:
            return super()._model_generate(context, max_length, stop, past_key_values=cache, **generation_kwargs)
        finally:
            cache.crop(-(cache.get_seq_length() - prefix_len))

    def _reusable_generation_prefix(self, context: torch.Tensor, generation_kwargs) -> tuple[int, DynamicCache] | None:
        """A cache of this context's leading tokens, shared with the previous request; else None.

        Only one unpadded sequence with plain decoding qualifies: left padding shifts every
        position, and beam search reorders the cache.
        """
        mask = generation_kwargs.get("attention_mask")
        if (
            context.shape[0] != 1
            or (mask is not None and not bool(mask.all()))
            or generation_kwargs.get("num_beams", 1) != 1
            or "past_key_values" in generation_kwargs
            # a configured cache implementation (e.g. static) refuses a cache passed in
            or getattr(getattr(self.model, "generation_config", None), "cache_implementation", None)
            or not self._prefix_caching_enabled()
        ):
            return None
        tokens = context[0].tolist()
        previous, self._previous_generation_context = self._previous_generation_context, tokens
        if self._generation_prefix is not None:
            prefix, cache = self._generation_prefix
            if len(prefix) < len(tokens) and tokens[: len(prefix)] == prefix:
                return len(prefix), cache
        if previous is None:
            return None
        # Leave at least one token uncached: generate needs an input to start from.
        shared = min(common_prefix_length(previous, tokens), len(tokens) - 1)
        if shared < self.prefix_min_tokens:
            return None
        self._generation_prefix = None  # free the old cache before building the new one
        self._generation_prefix = (tokens[:shared], self._prefix_cache(tokens[:shared]))
        return shared, self._generation_prefix[1]
