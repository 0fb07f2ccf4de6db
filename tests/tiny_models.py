"""Tiny random causal LMs of several architectures, built offline from configs.

Mechanics tests (lm_eval runs, finetuning, augmentation plumbing) need real HF model
directories but not real knowledge. Each model here has a byte-level BPE tokenizer
trained in-process on this package's own generated text, so nothing is downloaded.

    path = build_tiny_model("llama", tmp_path / "llama")
    # -> a directory that AutoModelForCausalLM / lm_eval --model hf load offline
"""

from __future__ import annotations

from pathlib import Path

# Full attention (rotary + grouped-query, learned absolute positions, partial rotary), then
# sliding-window and hybrid caches, then linear-attention hybrids (states that cannot branch).
FULL_ATTENTION_ARCHITECTURES = ("llama", "gpt2", "qwen2", "gpt_neox")
# Mistral: every layer slides; qwen2_hybrid (use_sliding_window): one full and one sliding layer;
# gemma3: sliding + full with sdpa; gemma2: the same with eager attention and logit soft-capping.
SLIDING_WINDOW_ARCHITECTURES = ("mistral", "qwen2_hybrid", "gemma3", "gemma2")
# lfm2: short convolutions + attention; qwen3_next: gated delta-rule linear attention + attention (MoE).
LINEAR_ATTENTION_ARCHITECTURES = ("lfm2", "qwen3_next")
ARCHITECTURES = FULL_ATTENTION_ARCHITECTURES + SLIDING_WINDOW_ARCHITECTURES + LINEAR_ATTENTION_ARCHITECTURES
# Small enough that every ICL test prompt is several windows long (the hard case for prefix reuse).
SLIDING_WINDOW = 16
VOCAB_SIZE = 384
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
# The SmolLM2 chat format, so `--apply_chat_template` works on tiny models too.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _training_corpus() -> list[str]:
    from lm_eval_tasks.api import generate_family

    texts = []
    for family in ("reversal", "syllogism"):
        data = generate_family(family, seed=0)
        texts += [row["text"] for row in data.train]
        texts += [" ".join([row["query"], *row["choices"]]) for rows in data.tests.values() for row in rows]
    return texts


def build_tokenizer():
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _training_corpus(), vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=list(SPECIAL_TOKENS.values())
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, **SPECIAL_TOKENS)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _config(architecture: str, tokenizer):
    import transformers

    ids = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if architecture == "llama":
        return transformers.LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            **ids,
        )
    if architecture == "qwen2":
        return transformers.Qwen2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            **ids,
        )
    if architecture == "gpt2":
        return transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=4096, **ids)
    if architecture == "gpt_neox":
        return transformers.GPTNeoXConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=4096,
            **ids,
        )
    attention = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        **ids,
    }
    if architecture == "mistral":
        return transformers.MistralConfig(sliding_window=SLIDING_WINDOW, **attention)
    if architecture == "qwen2_hybrid":  # layers below max_window_layers attend fully
        return transformers.Qwen2Config(
            use_sliding_window=True, sliding_window=SLIDING_WINDOW, max_window_layers=1, **attention
        )
    if architecture in ("gemma3", "gemma2"):
        layer_types = ["sliding_attention", "full_attention"]
        config_class = transformers.Gemma3TextConfig if architecture == "gemma3" else transformers.Gemma2Config
        return config_class(head_dim=8, sliding_window=SLIDING_WINDOW, layer_types=layer_types, **attention)
    if architecture == "lfm2":
        return transformers.Lfm2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            layer_types=["conv", "full_attention", "conv"],
            max_position_embeddings=4096,
            **ids,
        )
    if architecture == "qwen3_next":
        return transformers.Qwen3NextConfig(
            head_dim=8,
            linear_key_head_dim=8,
            linear_value_head_dim=8,
            linear_num_key_heads=2,
            linear_num_value_heads=4,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=16,
            shared_expert_intermediate_size=16,
            layer_types=["linear_attention", "full_attention"],
            **attention,
        )
    raise ValueError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES}")


def build_tiny_model(architecture: str, directory: Path, seed: int = 0) -> Path:
    """Save a randomly initialised `architecture` model and its tokenizer into `directory`."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(architecture, tokenizer))
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_sharp_model(source: Path, directory: Path, scale: float = 8.0) -> Path:
    """A copy of the tiny model at `source` with every weight matrix scaled by `scale`.

    Tiny random models have near-uniform attention, so a wrong mask or position barely moves
    their outputs and every prompt yields the same greedy text; scaled up, each such mistake
    shows (a mask that lets tree tokens see each other moves scores by ~0.1) and prompts steer
    the output.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.mul_(scale)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(source).save_pretrained(directory)
    return Path(directory)


def save_random_lora(model_dir: str | Path, out_dir: Path, seed: int = 0) -> Path:
    """A rank-4 LoRA adapter on every linear layer of `model_dir` with random, non-zero B.

    peft initialises B to zero, which would make the adapter a no-op; tests that need an
    adapter which changes the scores use this one.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir),
        LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator))
    model.save_pretrained(out_dir)
    return out_dir
