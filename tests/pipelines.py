"""The stock diffusers pipeline over the tiny base, the reference the trainer and the serving engine match."""

from __future__ import annotations

from typing import Any

from core.bases.quantization import Quantization
from core.bases.tiny import SCHEDULER_CONFIG
from trainer.models._untyped import UniPCMultistepScheduler, WanPipeline


def stock_pipeline(
    spec: Any, quantization: Quantization, encoder_quantization: Quantization = Quantization.BF16
) -> Any:
    """diffusers' own ``WanPipeline`` over the same tiny components, as a tenant would run it.

    The text encoder is unquantised unless ``encoder_quantization`` asks for the one a
    training run caches its prompts with (stored as the run's base).
    """
    encoder = spec.load_text_encoder(encoder_quantization)
    pipeline = WanPipeline(
        tokenizer=encoder.tokenizer,
        text_encoder=encoder.model,
        vae=spec.load_vae(),
        scheduler=UniPCMultistepScheduler(**SCHEDULER_CONFIG),
        transformer=spec.load_transformer(quantization),
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
