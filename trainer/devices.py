"""Device, dtype and memory bookkeeping shared by the stages of a run."""

from __future__ import annotations

import gc
import resource
import sys

import torch

from core.bases.quantization import Quantization
from trainer.errors import TrainerInputError


def resolve_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainerInputError("device cuda was requested but no CUDA device is available")
    return device


def compute_dtype(device: torch.device, quantization: Quantization) -> torch.dtype:
    """bf16 on CUDA. On CPU fp32 (bf16 matmuls are slow, inexact there) unless bf16 weights are asked for."""
    if device.type == "cuda" or quantization is Quantization.BF16:
        return torch.bfloat16
    return torch.float32


def free_memory(device: torch.device) -> None:
    """Return freed models' memory: the collector first (module cycles), then CUDA's cache."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> tuple[int, str]:
    """Peak bytes and what they measure: CUDA's max allocated, else the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "cuda_max_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return (rss if sys.platform == "darwin" else rss * 1024), "process_peak_rss"
