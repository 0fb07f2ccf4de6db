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
   once, in chunks of `prefix_chunk_tokens`, into the model's own cache.
3. The suffixes are scored from forks of that cache (`icl_ft_common.kv_cache`), in one of
   two modes, whichever the load-time probe found exact for this model:
   - tree attention (full and sliding-window attention with sdpa or eager): a pack of at
     most `prefix_pack_tokens` suffix tokens is merged into a token tree (a question
     shared by several choices is computed once) and run as ONE sequence whose position
     ids are the tree depths and whose mask lets each token see the prefix and its own
     ancestors only, within the sliding window on sliding layers (`icl_ft.prefix_tree`);
   - one suffix per forward (linear-attention and convolution layers, whose recurrent
     state cannot branch; attention implementations that take no custom mask): each
     suffix continues its own fork of the prefix state, still skipping the prefix.
   Logits are computed at the continuation positions only, so nothing of size context x
   vocabulary is ever held.

At load, a probe runs a few tokens through the model (`PrefixCachingHFLM.prefix_reuse`
is its verdict): which argument name continues a cache (`cache` on transformers >= 5.24,
`past_key_values` before), how to fork it, and whether cached and tree logits equal a
full forward. Anything else goes to `hf` unchanged, said once with the reason and
counted: requests without a long shared prefix, seq2seq models, prompt-learning PEFT
adapters (they inject their own past key values), models whose cache cannot be continued
exactly. The counts per path are logged after each call and recorded in the results file
(`config.hf_prefix`). Log-likelihoods equal `hf`'s up to floating-point summation order
(max abs difference ~1e-5 in fp32 on SmolLM2; see benchmarks/bench_prefix_scorer.py).

`generate_until` at batch size 1 reuses a prefix shared with the previous request
through `generate`; batched generation (left padding shifts every position) is `hf`'s.

This module imports lm_eval and torch at import time (it subclasses `HFLM`); lm-eval
imports it only when `--model hf-prefix` is asked for (see icl_ft/_lm_eval_hook.py).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import inspect
import logging

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from icl_ft.prefix_tree import (
    MaskLayout,
    PrefixGroup,
    TokenTree,
    as_model_mask,
    common_prefix_length,
    mask_layout,
    pack_suffixes,
    plan_prefix_groups,
)
from icl_ft_common.kv_cache import (
    PROBE_PREFIX_TOKENS,
    CacheReuse,
    CacheReuseUnsupported,
    default_tolerance,
    prefill,
    probe_cache_reuse,
    probe_tokens,
)

logger = logging.getLogger(__name__)

MODEL_NAME = "hf-prefix"
# Attention implementations that honour a custom 4D mask with explicit position ids;
# others (flash attention, ...) get one suffix per forward and no mask.
TREE_ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager")
TREE, SEQUENTIAL = "tree attention", "one suffix per forward"
# Probe prefixes cross a sliding window up to this size, so that the probe checks the window too.
PROBE_MAX_WINDOW = 56


@dataclasses.dataclass(frozen=True)
class PrefixReuse:
    """The load-time probe's verdict: how this model reuses a shared prefix, or why it does not."""

    mode: str | None  # TREE, SEQUENTIAL, or None: every request is scored as `hf` does
    reason: str | None = None  # why not TREE (None in tree mode)
    cache: CacheReuse | None = None
    layout: MaskLayout | None = None  # the tree masks (TREE mode)

    @property
    def enabled(self) -> bool:
        return self.mode is not None

    def describe(self) -> str:
        if self.mode is None:
            return f"prefix caching is off ({self.reason}); every request is scored as `hf` does"
        because = f" (no tree attention: {self.reason})" if self.reason else ""
        return f"shared prefixes are cached, suffixes scored by {self.mode}{because}; {self.cache.describe()}"


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

    `prefix_reuse` is the probe's verdict; `prefix_requests` counts the requests scored
    by each path (a Counter: "prefix cache, tree attention", "hf: <reason>", ...).
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
        self._generation_prefix: tuple[list[int], object] | None = None
        self._previous_generation_context: list[int] | None = None
        self.prefix_requests: collections.Counter[str] = collections.Counter()
        self.prefix_reuse = self._probe_prefix_reuse()
        if self.prefix_reuse.enabled:
            logger.info("%s: %s", MODEL_NAME, self.prefix_reuse.describe())
        else:  # said once, here; every request it concerns is counted
            logger.warning("%s: %s", MODEL_NAME, self.prefix_reuse.describe())

    # -- capabilities, decided once per model by running it

    @functools.cached_property
    def _forward_parameters(self) -> set[str]:
        model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return set(inspect.signature(model.forward).parameters)

    @functools.cached_property
    def _attention_implementation(self) -> str | None:
        # The loaded model's config: HFLM.config is read separately and never learns the implementation.
        return getattr(self.model.config, "_attn_implementation", None)

    @property
    def _compute_dtype(self) -> torch.dtype:
        return self.mixed_precision_dtype or self.model.dtype

    def _probe_prefix_reuse(self) -> PrefixReuse:
        if self.backend != "causal":
            return PrefixReuse(None, "not a decoder-only model")
        peft_config = getattr(self.model, "active_peft_config", None)
        if peft_config is not None and peft_config.is_prompt_learning:
            return PrefixReuse(None, "prompt-learning PEFT adapters bring their own past key values")
        config = self.model.config.get_text_config(decoder=True)
        window = getattr(config, "sliding_window", None)
        probe_len = window + 8 if window and window <= PROBE_MAX_WINDOW else PROBE_PREFIX_TOKENS
        vocab_size = self.model.get_input_embeddings().num_embeddings
        try:
            cache_reuse = probe_cache_reuse(self._run, vocab_size, self.device, self._compute_dtype, probe_len)
        except CacheReuseUnsupported as error:
            return PrefixReuse(None, str(error))
        if self._attention_implementation not in TREE_ATTENTION_IMPLEMENTATIONS:
            reason = f"the {self._attention_implementation} attention implementation takes no custom mask"
            return PrefixReuse(SEQUENTIAL, reason, cache_reuse)
        layout_or_reason = self._tree_probe(cache_reuse, vocab_size, probe_len)
        if isinstance(layout_or_reason, str):
            return PrefixReuse(SEQUENTIAL, layout_or_reason, cache_reuse)
        return PrefixReuse(TREE, None, cache_reuse, layout_or_reason)

    def _tree_probe(self, cache_reuse: CacheReuse, vocab_size: int, prefix_len: int) -> MaskLayout | str:
        """The tree masks of this model if a token tree scores like full forwards, else why not."""
        tokens = probe_tokens(vocab_size, prefix_len + 8, seed=1)[0].tolist()
        prefix, rest = tokens[:prefix_len], tokens[prefix_len:]
        # Two suffixes sharing two tokens (siblings must not see each other) and one apart.
        suffixes = [rest[:4], rest[:2] + rest[4:6], rest[6:8] + rest[:1]]
        tree = TokenTree()
        for suffix in suffixes:
            tree.add(suffix)
        try:
            cache = self._prefix_cache(prefix, cache_reuse)
            layout = mask_layout(self.model.config, cache)
            if isinstance(layout, str):
                return layout
            reuse = PrefixReuse(TREE, None, cache_reuse, layout)
            nodes = list(range(len(tree)))
            tree_log_probs = self._pack_logits(tree, nodes, cache, prefix_len, reuse).float().log_softmax(-1)
        except Exception as error:  # noqa: BLE001 - a model that refuses the masks is a verdict, not a crash
            return f"a token tree fails: {type(error).__name__}: {error}"
        worst = 0.0
        for suffix, path in zip(suffixes, tree.paths, strict=True):
            full = self._run(input_ids=torch.tensor([prefix + suffix], device=self.device), use_cache=False).logits
            expected = full[0, prefix_len:].float().log_softmax(-1)
            worst = max(worst, float((tree_log_probs[path] - expected).abs().max()))
        tolerance = default_tolerance(self._compute_dtype)
        if worst > tolerance:
            return f"token-tree logits differ from full forwards by {worst:.3g} (tolerance {tolerance:g})"
        return layout

    # -- forward passes

    def _run(self, **kwargs):
        with (
            torch.no_grad(),
            torch.autocast(
                device_type=self.device.type,
                dtype=self.mixed_precision_dtype,
                enabled=self.mixed_precision_dtype is not None,
            ),
        ):
            return self.model(**kwargs)

    def _logits(self, input_ids: torch.Tensor, keep: torch.Tensor, **kwargs) -> torch.Tensor:
        """Logits at positions `keep` of `input_ids` [1, n] (the model computes only those where it can)."""
        if "logits_to_keep" in self._forward_parameters:
            kwargs["logits_to_keep"] = keep
        logits = self._run(input_ids=input_ids, use_cache=True, **kwargs).logits
        if logits.shape[1] != len(keep):  # the model computed every position
            logits = logits[:, keep.to(logits.device)]
        return logits

    def _prefix_cache(self, prefix: list[int], cache_reuse: CacheReuse):
        """The model's cache after `prefix`, computed in chunks of `prefix_chunk_tokens` (logits of the last only)."""
        keep_last = {"logits_to_keep": 1} if "logits_to_keep" in self._forward_parameters else {}
        ids = torch.tensor([prefix], device=self.device)
        return prefill(lambda **kwargs: self._run(**kwargs, **keep_last), ids, cache_reuse, self.prefix_chunk_tokens)

    def _pack_logits(
        self, tree: TokenTree, scored_nodes: list[int], prefix_cache, prefix_len: int, reuse: PrefixReuse
    ) -> torch.Tensor:
        """Logits [len(scored_nodes), vocab] for a token tree continuing a fork of `prefix_cache`."""
        kwargs = {}
        if reuse.mode == TREE:
            masks = {
                layer_type: as_model_mask(mask, self._attention_implementation, self.model.dtype).to(self.device)
                for layer_type, mask in reuse.layout.masks(tree, prefix_len, prefix_cache).items()
            }
            kwargs["attention_mask"] = masks.get(None, masks)  # one mask for every layer, else one per layer type
            kwargs["position_ids"] = torch.tensor([tree.depths], device=self.device) + prefix_len
        elif len(tree.paths) != 1:
            raise AssertionError("without tree attention a pack must hold exactly one suffix")
        cache = reuse.cache.fork(prefix_cache)
        keep = torch.tensor(scored_nodes, device=self.device)
        input_ids = torch.tensor([tree.tokens], device=self.device)
        return self._logits(input_ids, keep, **reuse.cache.kwargs(cache), **kwargs)[0]

    # -- loglikelihood

    def _record(self, calls: collections.Counter) -> None:
        self.prefix_requests.update(calls)
        logger.info("%s: %s", MODEL_NAME, ", ".join(f"{count} requests via {path}" for path, count in calls.items()))

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        reuse = self.prefix_reuse
        if not requests or not reuse.enabled:
            if requests:
                self._record(collections.Counter({f"hf: {reuse.reason}": len(requests)}))
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        # Exactly the tokens `hf` feeds the model for each request (left-truncated the same way).
        inputs = [(context + continuation)[-(self.max_length + 1) :][:-1] for _, context, continuation in requests]
        groups, rest = plan_prefix_groups(
            inputs, [len(continuation) for _, _, continuation in requests], self.prefix_min_tokens
        )
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        calls = collections.Counter()
        if rest:
            answers = super()._loglikelihood_tokens(
                [requests[i] for i in rest], disable_tqdm=disable_tqdm, override_bs=override_bs
            )
            for index, answer in zip(rest, answers, strict=True):
                results[index] = answer
            calls[f"hf: no shared prefix of >= {self.prefix_min_tokens} tokens"] += len(rest)
        if groups:
            with tqdm(
                total=sum(len(group.members) for group in groups),
                disable=disable_tqdm or self.rank != 0,
                desc="Running loglikelihood requests (shared prefix cached)",
            ) as pbar:
                for group in groups:
                    self._score_group(group, requests, inputs, results, pbar)
            calls[f"prefix cache, {reuse.mode}"] += sum(len(group.members) for group in groups)
        self._record(calls)
        return results

    def _score_group(self, group: PrefixGroup, requests, inputs, results, pbar) -> None:
        logger.info("%s: %d requests share a %d-token prefix", MODEL_NAME, len(group.members), group.prefix_len)
        reuse = self.prefix_reuse
        cache = self._prefix_cache(inputs[group.members[0]][: group.prefix_len], reuse.cache)
        suffixes = [inputs[i][group.prefix_len :] for i in group.members]
        pack_tokens = self.prefix_pack_tokens if reuse.mode == TREE else 1
        for positions, tree in pack_suffixes(suffixes, pack_tokens):
            members = [group.members[p] for p in positions]
            # The last len(continuation) nodes of a path predict the continuation's tokens.
            tails = [path[-len(requests[m][2]) :] for m, path in zip(members, tree.paths, strict=True)]
            scored_nodes = sorted({node for tail in tails for node in tail})
            logprobs = F.log_softmax(
                self._pack_logits(tree, scored_nodes, cache, group.prefix_len, reuse), dim=-1, dtype=self.softmax_dtype
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

    def get_model_info(self) -> dict:
        """`hf`'s model info plus how hf-prefix scored (lm-eval writes it into the results file's `config`)."""
        reuse = self.prefix_reuse
        return {
            **super().get_model_info(),
            "hf_prefix": {
                "mode": reuse.mode or "off",
                "reason": reuse.reason,
                "cache": reuse.cache.describe() if reuse.cache else None,
                "requests": dict(self.prefix_requests),
            },
        }

    # -- generation

    def generate_until(self, requests, disable_tqdm: bool = False):
        try:
            return super().generate_until(requests, disable_tqdm=disable_tqdm)
        finally:  # the prefix cache of one call is never useful to the next: free it
            self._generation_prefix = self._previous_generation_context = None

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs):
        prefix_cache = self._reusable_generation_prefix(context, generation_kwargs)
        if prefix_cache is None:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        cache_reuse = self.prefix_reuse.cache
        # generate() extends the cache it is given: it gets a fork, the prefix stays reusable.
        cache_kwargs = cache_reuse.kwargs(cache_reuse.fork(prefix_cache))
        return super()._model_generate(context, max_length, stop, **cache_kwargs, **generation_kwargs)

    def _reusable_generation_prefix(self, context: torch.Tensor, generation_kwargs):
        """The cache of this context's leading tokens, shared with the previous request; else None.

        Only one unpadded sequence with plain decoding qualifies: left padding shifts every
        position, and beam search reorders the cache.
        """
        mask = generation_kwargs.get("attention_mask")
        if (
            not self.prefix_reuse.enabled
            or context.shape[0] != 1
            or (mask is not None and not bool(mask.all()))
            or generation_kwargs.get("num_beams", 1) != 1
            or {"cache", "past_key_values"} & generation_kwargs.keys()
            # a configured cache implementation (e.g. static) refuses a cache passed in
            or getattr(getattr(self.model, "generation_config", None), "cache_implementation", None)
        ):
            return None
        tokens = context[0].tolist()
        previous, self._previous_generation_context = self._previous_generation_context, tokens
        if self._generation_prefix is not None:
            prefix, cache = self._generation_prefix
            if len(prefix) < len(tokens) and tokens[: len(prefix)] == prefix:
                return cache
        if previous is None:
            return None
        # Leave at least one token uncached: generate needs an input to start from.
        shared = min(common_prefix_length(previous, tokens), len(tokens) - 1)
        if shared < self.prefix_min_tokens:
            return None
        self._generation_prefix = None  # free the old cache before building the new one
        self._generation_prefix = (tokens[:shared], self._prefix_cache(tokens[:shared], self.prefix_reuse.cache))
        return self._generation_prefix[1]
