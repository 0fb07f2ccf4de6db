"""Planning for `hf-prefix`: which requests share a prefix, suffixes as token trees, and their attention masks.

Pure functions on token ids and small tensors; `icl_ft.prefix_scorer` runs the model.

A token tree continues a cached prefix in ONE forward pass: position ids are the tree depths
(after the prefix) and each tree token may see the prefix and its own ancestors only. The
mask of a sliding-window layer must also hide every key more than `window - 1` positions back:
a custom 4D mask replaces the model's own masks entirely (transformers returns it as-is), so
nothing else applies the window. Such a layer's cache keeps only the last `window - 1` prefix
tokens, so its mask has fewer prefix columns than a full-attention layer's: a model with both
kinds reads one mask per layer type (`{"full_attention": ..., "sliding_attention": ...}`).
"""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import torch

from icl_ft_common.kv_cache import keeps_only_keys_and_values

# Layer types (config.layer_types) whose attention a tree mask can express.
FULL_ATTENTION, SLIDING_ATTENTION = "full_attention", "sliding_attention"


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


# --- masks ------------------------------------------------------------------------------


def tree_attention_mask(tree: TokenTree, prefix_len: int, cached: int, window: int | None) -> torch.Tensor:
    """[nodes, cached + nodes] bool: what each tree token sees of a layer's cached prefix keys and of the tree.

    The layer's cache holds the last `cached` of the `prefix_len` prefix tokens; tree node i
    sits at position prefix_len + depth(i). With a sliding `window`, a query sees keys fewer
    than `window` positions back (itself included), as transformers' sliding masks do.
    """
    depths = torch.tensor(tree.depths, dtype=torch.long)
    query_positions = prefix_len + depths
    key_positions = torch.cat([torch.arange(prefix_len - cached, prefix_len), query_positions])
    visible = torch.cat([torch.ones(len(tree), cached, dtype=torch.bool), tree.ancestor_mask()], dim=1)
    if window is not None:
        visible &= (query_positions[:, None] - key_positions[None, :]) < window
    return visible


@dataclasses.dataclass(frozen=True)
class MaskLayout:
    """The masks a model reads for a token tree: one per layer type, or one for every layer.

    `kinds` maps a layer type (a key of the model's mask dict; None when one mask serves all
    layers) to (sliding window or None, index of a cache layer of that type).
    """

    kinds: dict[str | None, tuple[int | None, int]]

    def masks(self, tree: TokenTree, prefix_len: int, cache) -> dict[str | None, torch.Tensor]:
        """Boolean masks [nodes, keys] per layer type, sized to what each layer's cache holds now."""
        return {
            layer_type: tree_attention_mask(tree, prefix_len, cached_tokens(cache.layers[layer]), window)
            for layer_type, (window, layer) in self.kinds.items()
        }


def cached_tokens(layer) -> int:
    return layer.keys.shape[-2]


def mask_layout(config, cache) -> MaskLayout | str:
    """How to mask a token tree for this model and its (filled) prefix cache, or why a tree cannot be masked."""
    text_config = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    layers = getattr(cache, "layers", None)
    if not layers:
        return "its cache has no per-layer key/value tensors"
    for index, layer in enumerate(layers):
        if not keeps_only_keys_and_values(layer):
            kind = type(layer).__name__
            return f"cache layer {index} ({kind}) keeps a recurrent or convolution state, which cannot branch"
    if getattr(text_config, "attention_chunk_size", None) is not None:
        return "chunked attention"
    windows = [getattr(layer, "sliding_window", None) for layer in layers]
    layer_types = getattr(text_config, "layer_types", None)
    if layer_types is None or len(set(windows)) == 1:
        # One mask for every layer, which then must all keep the same prefix tokens.
        if len(set(windows)) != 1:
            return "its layers keep different windows but the config names no layer types"
        return MaskLayout({None: (windows[0], 0)})
    if len(layer_types) != len(layers):
        return f"config.layer_types names {len(layer_types)} layers, its cache has {len(layers)}"
    kinds: dict[str | None, tuple[int | None, int]] = {}
    for index, (layer_type, window) in enumerate(zip(layer_types, windows, strict=True)):
        if layer_type not in (FULL_ATTENTION, SLIDING_ATTENTION):
            return f"layer type {layer_type!r}"
        if (layer_type == SLIDING_ATTENTION) != (window is not None):
            return f"layer {index} is {layer_type!r} but its cache keeps window {window}"
        if kinds.setdefault(layer_type, (window, index))[0] != window:
            return f"layers of type {layer_type!r} keep different windows"
    return MaskLayout(kinds)


def as_model_mask(mask: torch.Tensor, implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """[1, 1, q, k] as the attention implementation reads it: bool for sdpa, additive floats for eager."""
    if implementation == "eager":  # eager adds the mask to the scores
        mask = torch.zeros(mask.shape, dtype=dtype).masked_fill_(~mask, torch.finfo(dtype).min)
    return mask[None, None]
