"""The built-in ``tiny`` base's configs: a Wan 2.1 architecture small enough for tests.

Plain data, so the API can plan tiny jobs without torch; ``trainer.models.tiny`` builds
the modules from the same dictionaries.
"""

from __future__ import annotations

from typing import Any

TINY_TEXT_TOKENS = 32
# Wide enough (128) to carry a 2x2 patch of 16 latent channels through its residual stream
# intact, which the base's denoising relies on (``trainer.models.tiny``); two blocks are
# enough for a LoRA to learn a look and keep a step to a few milliseconds on a CPU.
TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 4,
    "attention_head_dim": 32,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 32,
    "ffn_dim": 256,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 32,
}
# The built-in base's autoencoder: a fixed transform with no weights (``TinyAutoencoder``).
# Each latent holds 16 numbers of an 8x8-pixel block, averaged over its 4 frames (the first
# frame alone, as in Wan's causal VAE): the block's mean colour and its coarsest luminance
# and chroma detail. Channels 0-2 are the mean of opponent colours (lightness, red-blue,
# green-magenta), 3-11 the next nine lightness frequencies, 12-15 two of each chroma.
AUTOENCODER_CONFIG: dict[str, Any] = {
    "z_dim": 16,
    "scale_factor_temporal": 4,
    "scale_factor_spatial": 8,
    # Roughly each coefficient's spread over ordinary footage, falling with frequency as a
    # photograph's spectrum does, so normalised latents have about the unit variance the
    # flow-matching noise assumes. Mid-grey, neutral footage is the zero latent.
    "latents_mean": [0.0] * 16,
    "latents_std": [6.0, 2.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 0.5, 0.5],
}
# The Wan VAE of the diffusers-layout stand-in folder (``write_diffusers_folder``), which
# keeps the real AutoencoderKLWan covered by tests. The catalogue plans the built-in base
# with it too: a few MB above the weight-free transform, so the plan errs high as it should.
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
