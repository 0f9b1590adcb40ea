"""Deterministic, resumable batches that never mix buckets.

Each epoch's order is a pure function of (seed, epoch), so the sampler's whole state is two
integers and a resumed run draws exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class BucketBatchSampler:
    def __init__(self, sample_buckets: Sequence[object], *, batch_size: int, seed: int) -> None:
        self._buckets = list(sample_buckets)
        self._batch_size = batch_size
        self._seed = seed
        self.epoch = 0
        self.position = 0
        self._current = self._epoch_batches(0)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self._seed * 1_000_003 + epoch)
        order = torch.randperm(len(self._buckets), generator=generator).tolist()
        pending: dict[object, list[int]] = {}
        batches: list[list[int]] = []
        for index in order:
            queue = pending.setdefault(self._buckets[index], [])
            queue.append(index)
            if len(queue) == self._batch_size:
                batches.append(queue.copy())
                queue.clear()
        # Short remainders still train, once per epoch, in a fixed order.
        batches.extend(queue for queue in pending.values() if queue)
        return batches

    def next_batch(self) -> list[int]:
        if self.position >= len(self._current):
            self.epoch += 1
            self.position = 0
            self._current = self._epoch_batches(self.epoch)
        batch = self._current[self.position]
        self.position += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._current = self._epoch_batches(self.epoch)
