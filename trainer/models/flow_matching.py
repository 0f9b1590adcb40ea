"""Rectified-flow noising shared by flow-matching architectures (Wan, and most newer bases).

x_t = (1 - sigma) * x_0 + sigma * noise, and the denoiser predicts the velocity noise - x_0.
"""

from __future__ import annotations

import torch

NUM_TRAIN_TIMESTEPS = 1000


def shift_sigmas(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """Push sigmas towards the noisy end, as Wan's samplers do with ``flow_shift``."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def sample_sigmas(batch: int, generator: torch.Generator, *, shift: float, scheme: str) -> torch.Tensor:
    """Per-sample sigmas in (0, 1), drawn on the generator's device (CPU) so CPU and CUDA agree."""
    if scheme == "uniform":
        u = torch.rand(batch, generator=generator)
    elif scheme == "logit_normal":
        u = torch.sigmoid(torch.randn(batch, generator=generator))
    else:
        raise ValueError(f"unknown timestep sampling {scheme!r}")
    return shift_sigmas(u, shift)


def add_noise(latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    sigmas = sigmas.view(-1, *([1] * (latents.ndim - 1))).to(latents)
    return (1 - sigmas) * latents + sigmas * noise
