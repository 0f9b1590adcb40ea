"""Serving tenants' adapters over one resident base: per-sample LoRA, a tiered adapter cache.

``pool`` applies many adapters in one batch; ``cache`` decides which adapters sit in the
pool (accelerator), in host memory, or only in storage; ``engine`` renders batches of
requests with them.
"""

from trainer.serving.adapters import AdapterError, AdapterKey, CacheFullError
from trainer.serving.cache import CacheStats, TieredAdapterCache
from trainer.serving.engine import GenerationEngine, GenerationRequest, GenerationStopped
from trainer.serving.pool import AdapterPool

__all__ = [
    "AdapterError",
    "AdapterKey",
    "AdapterPool",
    "CacheFullError",
    "CacheStats",
    "GenerationEngine",
    "GenerationRequest",
    "GenerationStopped",
    "TieredAdapterCache",
]
