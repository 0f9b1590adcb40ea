"""What every torch process of ours (fine-tune, generation, the trainer CLI) sets at its start."""

from __future__ import annotations

import torch


def flush_denormals() -> None:
    """Treat denormal floats as zero on the CPU, in this thread and every thread started after.

    x86 CPUs handle denormals in microcode. The tiny base's near-silent layers produce enough
    of them to make CPU generation ten times slower and a fine-tune's steps slower too
    (``bench/train_speed.py``). The setting lives in each thread's floating-point control
    register and new threads copy their creator's, so it is made first thing in ``main``,
    before torch starts its worker threads or we start ours.
    """
    torch.set_flush_denormal(True)
