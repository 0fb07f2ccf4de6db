"""Shared infrastructure of every package of lm-eval-icl-ft: the bottom layer, importing nothing of ours.

- `config`: the one config mechanism (dataclass -> command-line flags, YAML defaults, checks);
- `io`: atomic writes (text, JSON, JSONL) and the tolerant JSONL reader;
- `artifacts`: the names of the files the packages write and read back;
- `embedded_model`: the default model, SmolLM2-135M-Instruct, converted once into a checkpoint;
- `kv_cache`: whether and how a model reuses a prefix's KV cache, decided by a probe forward.

Importing any of these is cheap (no torch, transformers or lm_eval at import time).
"""
