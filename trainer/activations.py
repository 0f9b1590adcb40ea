"""Gradient checkpointing of the transformer's blocks, with the block inputs optionally held in
host memory.

Checkpointing keeps each block's input and recomputes the block in backward. Those inputs are
``num_layers`` tensors of ``tokens x dim``: 40 of 137 MiB each at Wan 14B, 480x832 and 33
frames. Offloaded, each is copied to pinned host memory as its block runs and back when
backward reaches the block, so the accelerator holds the one being recomputed; the price is
two PCIe transfers of every input per step. The blocks' other inputs (prompt embeddings,
timestep projection, rotary tables) are small and shared by every block, so they stay where
they are. ``TrainConfig.offloads_activations`` decides; ``estimate_peak_memory`` plans the same.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

BlockCheckpoint = Callable[..., torch.Tensor]


def block_checkpointing(*, offload_inputs: bool) -> BlockCheckpoint:
    """The function diffusers calls as ``f(block, hidden_states, *other_inputs)`` for each block."""
    return _checkpoint_offloading_input if offload_inputs else _checkpoint


def _checkpoint(block: nn.Module, hidden_states: torch.Tensor, *args: Any) -> torch.Tensor:
    # Non-reentrant, as diffusers' default: its saved inputs go through saved-tensor hooks.
    output: torch.Tensor = checkpoint(block.__call__, hidden_states, *args, use_reentrant=False)
    return output


def _checkpoint_offloading_input(block: nn.Module, hidden_states: torch.Tensor, *args: Any) -> torch.Tensor:
    # Under these hooks checkpointing saves the block's inputs and nothing else (what the
    # block saves goes through checkpointing's own, innermost hooks and is recomputed). The
    # saved tensors keep the hooks alive until backward, so ``pack`` must not hold the input.
    target = weakref.ref(hidden_states)

    def pack(tensor: torch.Tensor) -> torch.Tensor | _HostCopy:
        return _HostCopy.of(tensor) if tensor is target() else tensor

    def unpack(saved: torch.Tensor | _HostCopy) -> torch.Tensor:
        return saved.restore() if isinstance(saved, _HostCopy) else saved

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        return _checkpoint(block, hidden_states, *args)


@dataclass(frozen=True)
class _HostCopy:
    device: torch.device
    tensor: torch.Tensor

    @classmethod
    def of(cls, tensor: torch.Tensor) -> _HostCopy:
        # Pinned, so both copies are asynchronous DMA on the compute stream, which orders them
        # against the kernels that write and read the tensor; the host allocator reuses the
        # pinned blocks from step to step.
        pinned = tensor.is_cuda
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=pinned)
        host.copy_(tensor, non_blocking=pinned)
        return cls(tensor.device, host)

    def restore(self) -> torch.Tensor:
        return self.tensor.to(self.device, non_blocking=True)
