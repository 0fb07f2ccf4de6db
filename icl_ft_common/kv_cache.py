"""Continuing a model from a cached prefix, decided by what the model does rather than by argument names.

transformers 5.24 renamed the `past_key_values` argument of every model's `forward` and of
`generate` to `cache` (the old name still works until 5.40, with a FutureWarning), and the
output field with it; 5.0-5.23 know only `past_key_values`. Sliding-window and linear-attention
caches keep only part of the past, so a cache cannot always be cut back to its prefix either.
`probe_cache_reuse(model)` answers both questions once, with a few tokens through the model:

1. Run 12 tokens with `use_cache=True`: the model builds the cache type its architecture needs
   (full, sliding-window, linear-attention layers) and returns it.
2. Continue it with 4 more tokens under `cache=`, then under `past_key_values=`: the first
   name under which the cache object grows by 4 is the one this transformers reads (the other
   is ignored or deprecated), so 5.24+ never takes the deprecated path.
3. Continue two 4-token suffixes from forks of that 16-token prefix cache and compare their
   logits with one forward of the whole sequence: equal within floating-point tolerance, and
   the prefix cache unchanged afterwards. A fork shares the prefix's tensors when the layers
   only rebind theirs (full and sliding-window attention: free); layers that update a state in
   place (convolution, recurrent states) get cloned tensors instead. Last, the same with the
   fork repeated into a batch of two rows (`CacheReuse.batches`, what augment needs).

Callers: `icl_ft.prefix_scorer` (`--model hf-prefix`) and `augment.backends.HFGenerator`
(global-mode KV reuse). Import cost is nil: torch is imported inside the functions.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

# The name transformers >= 5.24 reads first, so that the deprecated one is only tried when it fails.
ARGUMENT_NAMES = ("cache", "past_key_values")
PROBE_PREFIX_TOKENS = 16
PROBE_SUFFIX_TOKENS = 4
# Max |difference| of log-probabilities between cached and full forwards that still counts as
# equal: summation order moves fp32 results by ~1e-5, 16-bit ones by up to ~1e-1; an ignored or
# wrongly continued cache moves them by whole units.
TOLERANCE = {4: 1e-3, 8: 1e-3, 2: 0.15}


class CacheReuseUnsupported(RuntimeError):
    """The model cannot continue a prefix cache exactly; the message says why."""


@dataclasses.dataclass(frozen=True)
class CacheReuse:
    """How to continue this model from a cache: the argument name, and how to fork a cache."""

    argument: str  # "cache" (transformers >= 5.24) or "past_key_values"
    clone_tensors: bool  # forks clone the state tensors (some layer updates them in place)
    batches: bool = False  # a fork repeated into several rows continues each row exactly

    def kwargs(self, cache) -> dict[str, Any]:
        """Keyword arguments that pass `cache` to the model's forward or to `generate`."""
        return {self.argument: cache}

    def fork(self, cache):
        """A copy of `cache` that can be continued without changing `cache`."""
        return fork_cache(cache, clone_tensors=self.clone_tensors)

    def fork_rows(self, cache, rows: int):
        """A fork of a one-row `cache` repeated into `rows` rows (a batch continuing the same prefix)."""
        return repeat_rows(cache, rows, clone_tensors=self.clone_tensors)

    def describe(self) -> str:
        forks = "cloned state" if self.clone_tensors else "shared tensors"
        return f"argument `{self.argument}`, forks with {forks}"


# --- caches as plain state ---------------------------------------------------------------


def returned_cache(outputs):
    """The cache a forward returned (field `cache` on transformers >= 5.24, `past_key_values` before)."""
    for name in ARGUMENT_NAMES:
        # dict.get: a ModelOutput's attribute for the old name warns on 5.24; its keys do not.
        value = dict.get(outputs, name) if isinstance(outputs, dict) else getattr(outputs, name, None)
        if value is not None:
            return value
    return None


def cache_length(cache) -> int | None:
    """Tokens seen by `cache`, or None where the cache cannot say (e.g. only recurrent layers)."""
    try:
        return int(cache.get_seq_length())
    except Exception:  # noqa: BLE001 - any failure means "not measurable", which callers handle
        return None


def _is_container(value) -> bool:
    return isinstance(value, (dict, list, tuple))


def _copy_state(value, copy_tensor: Callable, copy_objects: bool):
    """Copy containers (and, if `copy_objects`, the objects in them: the cache layers) down to the tensors."""
    import torch

    if isinstance(value, torch.Tensor):
        return copy_tensor(value)
    if isinstance(value, dict):
        return type(value)((key, _copy_state(item, copy_tensor, copy_objects)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_state(item, copy_tensor, copy_objects) for item in value)
    if copy_objects and hasattr(value, "__dict__") and not isinstance(value, type):
        return _copy_object(value, copy_tensor)
    return value


def _copy_object(obj, copy_tensor: Callable):
    """A shallow copy of `obj` whose tensors (through `copy_tensor`) and containers are copied one level down.

    Objects held directly in attributes (a config, a CUDA stream) stay shared; objects in
    containers (the layers of a cache) are copied the same way.
    """
    new = copy.copy(obj)
    for name, value in vars(obj).items():
        vars(new)[name] = _copy_state(value, copy_tensor, copy_objects=_is_container(value))
    return new


def fork_cache(cache, clone_tensors: bool):
    """A cache that can be continued independently of `cache`.

    Without `clone_tensors` the tensors are shared: correct for layers that rebind their
    tensors on update (concatenation), as full and sliding-window attention layers do, and
    free. With it every state tensor is cloned (layers that write into their state in place).
    """
    return _copy_object(cache, (lambda tensor: tensor.clone()) if clone_tensors else (lambda tensor: tensor))


def repeat_rows(cache, rows: int, clone_tensors: bool):
    """A fork of a one-row cache whose per-row state (tensors with a leading dimension of 1) has `rows` rows."""

    def copy_tensor(tensor):
        if tensor.dim() > 0 and tensor.shape[0] == 1:
            return tensor.repeat_interleave(rows, dim=0)
        return tensor.clone() if clone_tensors else tensor

    return _copy_object(cache, copy_tensor)


def state_tensors(cache) -> Iterator:
    """Every tensor held by `cache` and its layers (to check that a fork left it untouched)."""
    import torch

    def walk(value, depth: int):
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from walk(item, depth)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from walk(item, depth)
        elif depth < 2 and hasattr(value, "__dict__") and not isinstance(value, type):
            for item in vars(value).values():
                yield from walk(item, depth + 1)

    yield from walk(cache, 0)


def keeps_only_keys_and_values(layer) -> bool:
    """True if a cache layer's only per-token state is its key and value tensors (attention, nothing recurrent)."""
    import torch

    keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
    if not (isinstance(keys, torch.Tensor) and isinstance(values, torch.Tensor) and keys.dim() == 4):
        return False
    for name, value in vars(layer).items():
        if name in ("keys", "values"):
            continue
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return False
        if isinstance(value, (dict, list, tuple)) and any(isinstance(v, torch.Tensor) for v in _flatten(value)):
            return False
    return True


def _flatten(value):
    items = value.values() if isinstance(value, dict) else value
    for item in items:
        if isinstance(item, (dict, list, tuple)):
            yield from _flatten(item)
        else:
            yield item


# --- the probe ---------------------------------------------------------------------------


Forward = Callable[..., Any]  # model(**kwargs) -> outputs with .logits and a cache


def _log_probs(outputs):
    return outputs.logits.float().log_softmax(dim=-1)


def probe_tokens(vocab_size: int, length: int, seed: int = 0):
    """[1, length] token ids, deterministic, away from the low ids where special tokens usually sit."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    low = min(16, vocab_size // 2)
    return torch.randint(low, vocab_size, (1, length), generator=generator)


def probe_cache_reuse(
    forward: Forward,
    vocab_size: int,
    device,
    dtype=None,
    prefix_tokens: int = PROBE_PREFIX_TOKENS,
    tolerance: float | None = None,
) -> CacheReuse:
    """Find out how `forward` (a model call) continues a prefix cache; raise CacheReuseUnsupported if it cannot.

    `forward(**kwargs)` runs the model (with no_grad, autocast, ... as the caller needs);
    `dtype` (the model's) sets the default tolerance. A caller that needs the prefix to cross
    a sliding window passes a longer `prefix_tokens`.
    """
    import torch

    if tolerance is None:
        tolerance = default_tolerance(dtype)
    split = max(prefix_tokens - PROBE_SUFFIX_TOKENS, 1)
    tokens = probe_tokens(vocab_size, prefix_tokens + 2 * PROBE_SUFFIX_TOKENS).to(device)
    prefix = tokens[:, :prefix_tokens]
    suffixes = (tokens[:, prefix_tokens : prefix_tokens + PROBE_SUFFIX_TOKENS], tokens[:, -PROBE_SUFFIX_TOKENS:])
    with torch.no_grad():
        expected = [
            _log_probs(forward(input_ids=torch.cat([prefix, suffix], dim=1), use_cache=False))[:, prefix_tokens:]
            for suffix in suffixes
        ]
        cache = returned_cache(forward(input_ids=prefix[:, :split], use_cache=True))
        if cache is None:
            raise CacheReuseUnsupported("the model returns no cache")
        argument = _continuing_argument(forward, cache, prefix[:, split:])
        if argument is None:
            names = " or ".join(f"`{name}`" for name in ARGUMENT_NAMES)
            raise CacheReuseUnsupported(f"the model does not continue a cache passed as {names}")
        for clone_tensors in (False, True):
            reuse = CacheReuse(argument, clone_tensors)
            if cache is None:  # the previous attempt may have changed it: build it again
                cache = prefill(forward, prefix, reuse, chunk_tokens=split)
            error = fork_error(forward, reuse, cache, suffixes, expected, tolerance)
            if error is None:
                batch_error = rows_error(forward, reuse, cache, suffixes, expected, tolerance)
                if batch_error is not None:
                    logger.debug("no batches from one prefix cache: %s", batch_error)
                return dataclasses.replace(reuse, batches=batch_error is None)
            logger.debug("forks with %s: %s", reuse.describe(), error)
            cache = None
    raise CacheReuseUnsupported(error)


def prefill(forward: Forward, input_ids, reuse: CacheReuse, chunk_tokens: int):
    """The cache of `input_ids` ([1, n]), run through `forward` in chunks of at most `chunk_tokens`.

    The first chunk runs without a cache, so the model builds the cache type it needs.
    """
    cache = None
    for start in range(0, input_ids.shape[1], chunk_tokens):
        chunk = input_ids[:, start : start + chunk_tokens]
        outputs = forward(input_ids=chunk, use_cache=True, **({} if cache is None else reuse.kwargs(cache)))
        cache = returned_cache(outputs) if cache is None else cache
        if cache is None:
            raise CacheReuseUnsupported("the model returns no cache")
    return cache


def default_tolerance(dtype) -> float:
    import torch

    itemsize = torch.empty((), dtype=dtype).element_size() if dtype is not None else 4
    return TOLERANCE.get(itemsize, TOLERANCE[4])


def fork_error(forward: Forward, reuse: CacheReuse, cache, suffixes, expected, tolerance: float) -> str | None:
    """Why continuing forks of `cache` with `suffixes` does not give the `expected` log-probs, or None if it does."""
    import torch

    before = [tensor.clone() for tensor in state_tensors(cache)]
    length = cache_length(cache)
    worst = 0.0
    for suffix, reference in zip(suffixes, expected, strict=True):
        try:
            outputs = forward(input_ids=suffix, use_cache=True, **reuse.kwargs(reuse.fork(cache)))
        except Exception as error:  # noqa: BLE001 - a model that cannot take the fork is a verdict, not a crash
            return f"a forked cache fails: {type(error).__name__}: {error}"
        worst = max(worst, float((_log_probs(outputs) - reference).abs().max()))
    after = list(state_tensors(cache))
    if (
        cache_length(cache) != length
        or len(after) != len(before)
        or not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(after, before))
    ):
        return "continuing a fork changes the prefix cache"
    if worst > tolerance:
        return f"prefix-then-suffix logits differ from a full forward by {worst:.3g} (tolerance {tolerance:g})"
    return None


def rows_error(forward: Forward, reuse: CacheReuse, cache, suffixes, expected, tolerance: float) -> str | None:
    """Why a fork repeated into one row per suffix does not continue each row exactly, or None if it does."""
    import torch

    try:
        batch = torch.cat(list(suffixes), dim=0)
        outputs = forward(input_ids=batch, use_cache=True, **reuse.kwargs(reuse.fork_rows(cache, len(suffixes))))
        worst = float((_log_probs(outputs) - torch.cat(list(expected), dim=0)).abs().max())
    except Exception as error:  # noqa: BLE001 - a verdict, not a crash
        return f"a cache repeated into rows fails: {type(error).__name__}: {error}"
    return None if worst <= tolerance else f"rows of a repeated cache differ by {worst:.3g}"


def _continuing_argument(forward: Forward, cache, tokens) -> str | None:
    """The first argument name under which `forward` continues `cache` in place, else None."""
    for name in ARGUMENT_NAMES:
        before = cache_length(cache)
        try:
            outputs = forward(input_ids=tokens, use_cache=True, **{name: cache})
        except (TypeError, ValueError) as error:  # an unknown or refused keyword
            logger.debug("continuing a cache via %s= failed: %s", name, error)
            continue
        after = cache_length(cache)
        if before is not None and after is not None:
            grew = after == before + tokens.shape[1]
        else:  # no length to read (recurrent layers only): the model must at least hand back our object
            grew = returned_cache(outputs) is cache
        if grew:
            return name
    return None
