"""One resident base that renders batches of requests, each sample with its own adapter.

The text encoder, VAE and transformer load once and stay. A batch shares its shape and
step count (the worker only batches such requests); everything else is per sample: prompt,
negative prompt, seed, guidance scale, adapter and its strength. Noise comes from each
sample's own seeded generator and the LoRA is applied row-wise per sample, so a request
renders the same alone or beside any others, up to the floating-point order of batched
matrix products.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from core.bases.quantization import Quantization
from trainer.devices import free_memory
from trainer.models.registry import ModelSpecification
from trainer.serving.adapters import AdapterKey, CacheFullError
from trainer.serving.cache import MAX_RANK, Fetch, TieredAdapterCache
from trainer.serving.pool import AdapterPool


class GenerationStopped(Exception):
    """Raised from ``on_step`` to abandon a batch (every request in it was cancelled)."""


@dataclass(frozen=True)
class GenerationRequest:
    adapter: AdapterKey | None  # None renders the bare base
    prompt: str
    negative_prompt: str = ""
    width: int = 64
    height: int = 64
    frames: int = 9
    steps: int = 8
    guidance: float = 5.0
    seed: int = 0
    strength: float = 1.0

    @property
    def shape_key(self) -> tuple[int, int, int, int, bool]:
        """Requests with equal keys can share a batch."""
        return (self.width, self.height, self.frames, self.steps, self.guidance > 1.0)


class GenerationEngine:
    def __init__(
        self,
        spec: ModelSpecification,
        *,
        quantization: Quantization,
        fetch: Fetch,
        device_cache_bytes: int,
        host_cache_bytes: int,
        max_batch: int,
        max_rank: int = MAX_RANK,
    ) -> None:
        self.spec = spec
        self.max_batch = max_batch
        self.text_encoder = spec.load_text_encoder()
        self.vae = spec.load_vae()
        self.transformer = spec.load_transformer(quantization)
        self.pool = AdapterPool(
            self.transformer, spec.default_lora_targets, budget_bytes=device_cache_bytes, dtype=spec.dtype
        )
        # A batch whose adapters do not fit together is split, down to one request, which
        # must always fit: one adapter of the largest rank beside the zero row.
        if self.pool.rows < max_rank + 1:
            raise ValueError(
                f"an accelerator adapter cache of {device_cache_bytes} bytes holds {self.pool.rows} LoRA "
                f"rows; a rank-{max_rank} adapter needs {max_rank + 1} (raise "
                "RUSHES_GENERATIONS__DEVICE_CACHE_BYTES)"
            )
        self.cache = TieredAdapterCache(self.pool, fetch, host_bytes=host_cache_bytes, max_rank=max_rank)

    def close(self) -> None:
        self.cache.close()

    def prefetch(self, keys: Sequence[AdapterKey]) -> None:
        self.cache.prefetch(keys)

    def generate(
        self, requests: Sequence[GenerationRequest], on_step: Callable[[int], None] | None = None
    ) -> torch.Tensor:
        """Frames ``[b, f, h, w, 3]`` in [0, 1], one video per request, in order.

        When the batch's adapters do not fit in the accelerator tier together, or the batch
        runs out of accelerator memory, its halves render one after the other (``on_step``
        then counts each half's steps); a request renders the same either way. A single
        request that still does not fit raises.
        """
        if not requests or len(requests) > self.max_batch:
            raise ValueError(f"a batch holds 1 to {self.max_batch} requests")
        if any(r.shape_key != requests[0].shape_key for r in requests):
            raise ValueError("a batch's requests must share size, frames, steps and guidance on/off")
        try:
            return self._render(requests, on_step)
        except (CacheFullError, torch.OutOfMemoryError):
            if len(requests) == 1:
                raise
            free_memory(self.spec.device)
            half = len(requests) // 2
            return torch.cat(
                [self.generate(requests[:half], on_step), self.generate(requests[half:], on_step)]
            )

    @torch.no_grad()
    def _render(
        self, requests: Sequence[GenerationRequest], on_step: Callable[[int], None] | None
    ) -> torch.Tensor:
        first = requests[0]
        keys = [r.adapter for r in requests if r.adapter is not None]
        # Cold adapters load while the prompts are encoded.
        self.cache.prefetch(keys)
        cfg = first.guidance > 1.0
        texts = [r.prompt for r in requests] + ([r.negative_prompt for r in requests] if cfg else [])
        embeds = self.spec.encode_prompts(self.text_encoder, texts)
        prompts = self.spec.batch_prompt_embeds(embeds[: len(requests)])
        negatives = self.spec.batch_prompt_embeds(embeds[len(requests) :]) if cfg else None
        resident = self.cache.acquire(keys)
        try:
            self.pool.route(
                [resident[r.adapter].rows if r.adapter else () for r in requests],
                [r.strength * resident[r.adapter].scaling if r.adapter else 0.0 for r in requests],
            )
            noise = self.spec.initial_noise(
                [torch.Generator().manual_seed(r.seed) for r in requests],
                frames=first.frames,
                height=first.height,
                width=first.width,
            )
            autocast = self.spec.device.type == "cuda"
            with torch.autocast(self.spec.device.type, dtype=torch.bfloat16, enabled=autocast):
                return self.spec.sample(
                    self.transformer,
                    self.vae,
                    prompts,
                    negatives,
                    noise=noise,
                    steps=first.steps,
                    guidance=torch.tensor([r.guidance for r in requests]),
                    on_step=on_step,
                )
        finally:
            self.pool.clear_route()
            self.cache.release(keys)
