"""Hugging Face configuration of the Cognate model (the PyTorch twin of activities/cognate/engine/model.ts).

An exported Cognate artifact's config.json is written by activities/cognate/engine/export.ts (hfConfig);
its keys are read here. Keys this class does not name (parameter_count, backend, cognate_config, ...)
are kept as plain attributes by PretrainedConfig, so the config round-trips through save_pretrained.
"""
from transformers import PretrainedConfig


class CognateConfig(PretrainedConfig):
    model_type = "cognate"

    def __init__(
        self,
        vocab_size=32000,
        hidden_size=216,
        num_hidden_layers=11,
        num_attention_heads=4,
        intermediate_size=1152,
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        act_enabled=True,
        act_threshold=0.99,
        ponder_cost=0.01,
        mem_enabled=True,
        mem_dim=216,
        mem_capacity=4096,
        mem_top_k=4,
        mem_layer=-1,
        mem_surprise_threshold=None,
        mem_novelty_threshold=0.1,
        ltm_file="ltm.safetensors",
        initializer_range=0.02,
        use_cache=False,
        tie_word_embeddings=False,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.rms_norm_eps = rms_norm_eps
        self.rope_theta = rope_theta
        # ACT (act.ts): a position halts once its summed halting probability reaches act_threshold.
        self.act_enabled = act_enabled
        self.act_threshold = act_threshold
        self.ponder_cost = ponder_cost
        # Long-term memory (ltm.ts): a kNN memory of block mem_layer's attention keys/values (-1: the middle
        # block); the bank itself is the separate file `ltm_file` of the export. mem_dim, mem_surprise_threshold
        # and mem_novelty_threshold are kept for the record (tfjs training settings); the forward does not use them.
        self.mem_enabled = mem_enabled
        self.mem_layer = mem_layer
        self.mem_dim = mem_dim
        self.mem_capacity = mem_capacity
        self.mem_top_k = mem_top_k
        self.mem_surprise_threshold = mem_surprise_threshold
        self.mem_novelty_threshold = mem_novelty_threshold
        self.ltm_file = ltm_file if mem_enabled else None
        self.initializer_range = initializer_range
        # No KV cache: generate() recomputes the whole sequence every step (see modeling_cognate.py).
        self.use_cache = use_cache
        if hidden_size % num_attention_heads != 0 or (hidden_size // num_attention_heads) % 2 != 0:
            raise ValueError(
                f"CognateConfig: hidden_size ({hidden_size}) / num_attention_heads ({num_attention_heads}) "
                "must be an even integer for rotary positions"
            )
        if mem_enabled and not -1 <= mem_layer < num_hidden_layers:
            raise ValueError(f"CognateConfig: mem_layer ({mem_layer}) must be below num_hidden_layers ({num_hidden_layers}), or -1")
        if mem_enabled and mem_top_k > mem_capacity:
            raise ValueError(f"CognateConfig: mem_top_k ({mem_top_k}) must not exceed mem_capacity ({mem_capacity})")
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
