"""An exported adapter file, unpacked into the row layout of one ``AdapterPool``.

The file is the trainer's export (``trainer/export.py``): peft keys under ``transformer.``
and the LoRA config in the safetensors header. Unpacking happens once, when the adapter
enters host memory; afterwards moving it to the accelerator is a plain copy.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import safetensors.torch
import torch

_PREFIX = "transformer."
_METADATA_KEY = "lora_adapter_metadata"


class AdapterError(ValueError):
    """An adapter this server cannot apply; the message is fit to show its owner."""

    def __init__(self, message: str, key: AdapterKey | None = None) -> None:
        super().__init__(message)
        self.key = key


class CacheFullError(RuntimeError):
    """The adapters of one batch do not fit in the accelerator tier together: a capacity
    limit of this server, not a fault of any adapter."""


class AdapterKey(NamedTuple):
    """Whose adapter: the tenant is part of every cache key, so two tenants never share an entry."""

    tenant_id: str
    version_id: str


@dataclass(frozen=True)
class ModuleShape:
    name: str  # the peft module name, e.g. ``blocks.0.attn1.to_q``
    in_features: int
    out_features: int


@dataclass(frozen=True)
class HostAdapter:
    """One adapter in host memory: for each pool module, A ``[rank, in]`` then B transposed ``[rank, out]``.

    Everything sits in one flat tensor (one allocation), so an eviction hands back one block
    and thousands of load/evict cycles do not fragment the host heap.
    """

    key: AdapterKey
    rank: int
    scaling: float  # alpha / rank, as peft applies it
    flat: torch.Tensor

    @property
    def nbytes(self) -> int:
        return self.flat.numel() * self.flat.element_size()

    def views(self, modules: Sequence[ModuleShape]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out, offset = [], 0
        for module in modules:
            a_size, b_size = self.rank * module.in_features, self.rank * module.out_features
            a = self.flat[offset : offset + a_size].view(self.rank, module.in_features)
            b = self.flat[offset + a_size : offset + a_size + b_size].view(self.rank, module.out_features)
            out.append((a, b))
            offset += a_size + b_size
        return out


def _header(data: bytes) -> dict[str, str]:
    (length,) = struct.unpack("<Q", data[:8])
    metadata: dict[str, str] = json.loads(data[8 : 8 + length]).get("__metadata__") or {}
    return metadata


def _alpha(data: bytes, rank: int) -> float:
    config = json.loads(_header(data).get(_METADATA_KEY, "{}"))
    # diffusers assumes alpha = rank when the header does not say; so does the stock loader.
    return float(config.get(f"{_PREFIX}lora_alpha", rank))


def unpack(
    key: AdapterKey,
    data: bytes,
    modules: Sequence[ModuleShape],
    *,
    max_rank: int,
    dtype: torch.dtype,
    pin_memory: bool = False,
) -> HostAdapter:
    """Check an exported adapter against the pool's modules and lay it out as ``HostAdapter``."""
    try:
        tensors = safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own untyped errors for corrupt files
        raise AdapterError("the adapter file is not a readable safetensors file") from exc
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        target, _, kind = name.removeprefix(_PREFIX).rpartition(".lora_")
        if not name.startswith(_PREFIX) or kind not in ("A.weight", "B.weight"):
            raise AdapterError(f"the adapter holds {name!r}, which is not a transformer LoRA weight")
        pairs.setdefault(target, {})[kind[0]] = tensor
    by_name = {module.name: module for module in modules}
    unknown = sorted(set(pairs) - set(by_name))
    if unknown:
        raise AdapterError(f"the adapter changes {unknown[0]}, which this server does not apply LoRA to")
    ranks = {pair["A"].shape[0] for pair in pairs.values() if "A" in pair}
    if len(ranks) != 1:
        raise AdapterError("the adapter's layers do not share one rank")
    (rank,) = ranks
    if not 1 <= rank <= max_rank:
        raise AdapterError(f"the adapter's rank {rank} is above this server's limit of {max_rank}")
    size = sum(rank * (m.in_features + m.out_features) for m in modules)
    flat = torch.zeros(size, dtype=dtype, pin_memory=pin_memory)
    adapter = HostAdapter(key=key, rank=rank, scaling=_alpha(data, rank) / rank, flat=flat)
    for module, (a, b) in zip(modules, adapter.views(modules), strict=True):
        pair = pairs.get(module.name)
        if pair is None:
            continue  # a module the adapter does not target contributes zero rows
        if set(pair) != {"A", "B"}:
            raise AdapterError(f"the adapter has only half of the LoRA pair for {module.name}")
        if pair["A"].shape != (rank, module.in_features) or pair["B"].shape != (module.out_features, rank):
            raise AdapterError(f"the adapter's {module.name} weights do not fit this base's layer")
        a.copy_(pair["A"])
        b.copy_(pair["B"].T)
    return adapter
