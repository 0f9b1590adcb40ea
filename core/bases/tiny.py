"""The built-in ``tiny`` base's configs: a Wan 2.1 architecture small enough for tests.

Plain data, so the API can plan tiny jobs without torch; ``trainer.models.tiny`` builds
the modules from the same dictionaries.
"""

from __future__ import annotations

from typing import Any

TINY_TEXT_TOKENS = 32
TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 32,
    "ffn_dim": 64,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 32,
}
VAE_CONFIG: dict[str, Any] = {
    "base_dim": 4,
    "z_dim": 16,
    "dim_mult": [1, 1, 1, 1],
    "num_res_blocks": 1,
    "temperal_downsample": [False, True, True],
}
TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "vocab_size": 384,  # ByT5: 256 bytes, 3 specials, 125 sentinels
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 16,
    "dropout_rate": 0.0,
}
SCHEDULER_CONFIG: dict[str, Any] = {
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "num_train_timesteps": 1000,
    "flow_shift": 3.0,
}
# Parameters of the VAE built from VAE_CONFIG (a test counts the real module).
VAE_PARAMS = 21_819
