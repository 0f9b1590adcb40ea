"""Per-sample LoRA over a shared base: every resident adapter's weights live in one row pool.

S-LoRA's unified paging, reduced to what a diffusion batch needs. Each wrapped linear owns
two tables, A rows ``[N, in]`` and B-transposed rows ``[N, out]``; an adapter of rank r
holds r row numbers, the same numbers in every wrapped linear and not necessarily
contiguous. A batch is routed by one index tensor ``[batch, R]`` of row numbers, padded
with row 0, which is never written and stays zero. So:

- choosing the adapters of a batch costs one small tensor, whatever the number resident
  (diffusers' ``set_adapters`` walks every module and every loaded adapter instead);
- each sample of a batch gets its own adapter and strength: peft's mixed-adapter batches,
  without a Python loop over adapters;
- loading or evicting an adapter writes rows in place: the tables are allocated once, and a
  load's only transient device memory is one layer's weights, so adapters coming and going
  cannot grow or fragment accelerator memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from trainer.serving.adapters import HostAdapter, ModuleShape

# Rows beyond this would hold more adapters than any worker keeps hot (2,048 of rank 32);
# the cap keeps a small base from allocating the whole byte budget for nothing.
MAX_ROWS = 65_536


@dataclass
class Routing:
    """The current batch: each sample's row numbers ``[b, R]`` and LoRA scale ``[b]``."""

    rows: torch.Tensor | None = None
    scales: torch.Tensor | None = None


class SlotLinear(nn.Module):
    """A frozen linear (plain or bitsandbytes-quantised) plus its rows of every resident adapter."""

    def __init__(self, base: nn.Linear, rows: int, routing: Routing, dtype: torch.dtype) -> None:
        super().__init__()
        self.base = base
        self.routing = routing
        device = next(base.parameters()).device
        self.register_buffer("a_rows", torch.zeros(rows, base.in_features, dtype=dtype, device=device))
        self.register_buffer("b_rows", torch.zeros(rows, base.out_features, dtype=dtype, device=device))
        self.a_rows: torch.Tensor
        self.b_rows: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.base(x)
        rows, scales = self.routing.rows, self.routing.scales
        if rows is None or scales is None:
            return result
        if x.shape[0] != rows.shape[0]:
            # A sample's rows must meet that sample's tokens and no other's.
            raise RuntimeError(f"routed for {rows.shape[0]} samples, called with {x.shape[0]}")
        # As peft computes it: B(A(x)) in the adapter's dtype, times the scaling (fp32 here,
        # a Python float there), added to the base's output.
        flat = x.reshape(rows.shape[0], -1, x.shape[-1]).to(self.a_rows.dtype)
        delta = torch.bmm(torch.bmm(flat, self.a_rows[rows].transpose(1, 2)), self.b_rows[rows])
        return result + (delta * scales.view(-1, 1, 1)).view(result.shape).to(result.dtype)


class AdapterPool:
    """The accelerator tier: ``rows`` LoRA rows in every target linear of a transformer's blocks."""

    def __init__(
        self, transformer: nn.Module, targets: Sequence[str], *, budget_bytes: int, dtype: torch.dtype
    ) -> None:
        found = [
            (name, module)
            for name, module in transformer.named_modules()
            if name.startswith("blocks.") and any(name.endswith(f".{t}") for t in targets)
        ]
        if not found:
            raise ValueError(f"the transformer has no block linears named {', '.join(targets)}")
        for name, module in found:
            if not isinstance(module, nn.Linear):
                raise TypeError(f"LoRA target {name} is a {type(module).__name__}, not a linear layer")
        self.dtype = dtype
        self.shapes = [ModuleShape(name, m.in_features, m.out_features) for name, m in found]
        self.rows = min(budget_bytes // self.row_bytes, MAX_ROWS)
        if self.rows < 2:
            raise ValueError(f"an adapter pool of {budget_bytes} bytes holds no LoRA row beside the zero row")
        self.routing = Routing()
        self.modules: list[SlotLinear] = []
        for name, module in found:
            parent, _, child = name.rpartition(".")
            slot = SlotLinear(module, self.rows, self.routing, dtype)
            transformer.get_submodule(parent).register_module(child, slot)
            self.modules.append(slot)
        self.device = self.modules[0].a_rows.device

    @property
    def row_bytes(self) -> int:
        """Bytes one rank of one adapter takes across every wrapped linear."""
        features = sum(s.in_features + s.out_features for s in self.shapes)
        return features * torch.empty(0, dtype=self.dtype).element_size()

    def write(self, adapter: HostAdapter, rows: Sequence[int]) -> None:
        """Copy an adapter into free rows (every module: untargeted ones get its zero rows)."""
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        # Module by module, so the transient device copies are one layer's, not the adapter's.
        with torch.no_grad():
            for module, (a, b) in zip(self.modules, adapter.views(self.shapes), strict=True):
                module.a_rows.index_copy_(0, index, a.to(self.device, non_blocking=True))
                module.b_rows.index_copy_(0, index, b.to(self.device, non_blocking=True))

    def route(self, rows: Sequence[Sequence[int]], scales: Sequence[float]) -> None:
        """Give sample i the adapter in ``rows[i]`` at ``scales[i]``; an empty list means the bare base."""
        width = max((len(r) for r in rows), default=0) or 1
        padded = [list(r) + [0] * (width - len(r)) for r in rows]
        self.routing.rows = torch.tensor(padded, dtype=torch.long, device=self.device)
        self.routing.scales = torch.tensor(scales, dtype=torch.float32, device=self.device)

    def clear_route(self) -> None:
        self.routing.rows = self.routing.scales = None
