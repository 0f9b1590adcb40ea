"""Training step time on the tiny base with and without flushing denormal floats.

    python -m bench.train_speed [--steps 40] [--warmup 5] [--rounds 2] [--quantization nf4,fp32]
        [--side-by-side]

The generation process flushes denormal floats (on x86 CPUs they go through microcode: ten
times slower generation on the tiny base). This measures the same setting for fine-tunes:
the ``quick`` preset's shape on the tiny base (rank 16, 64x64, 33 frames, batch 1, constant
LR after warm-up) over generated footage. Each variant runs in its own subprocess, so the
setting is the process's from its start as it is in a worker. Rounds alternate the variants
so drift in the machine's speed hits both alike; with ``--side-by-side`` both variants of a
round run at once, so that on a machine other work shares the same load weighs on both. A
step's time is the gap between two progress callbacks, in wall-clock time and in the
process's CPU time (all its threads); the first ``--warmup`` steps are dropped and the
median of the rest is reported. Run by hand, never in tests; it prints Markdown.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("off", "on")


def _measure(flush: bool, quantization: str, steps: int) -> dict[str, Any]:
    import hashlib

    import numpy as np
    from PIL import Image

    from core.bases.quantization import Quantization
    from trainer import FolderSource, LoraSettings, RunStorage, StepReport, TrainConfig, Trainer
    from trainer.data import TrainingAsset, TrainingDataset
    from trainer.process import flush_denormals

    if flush:
        flush_denormals()  # as the fine-tune processes' entry points do
    with tempfile.TemporaryDirectory(prefix="bench-train-speed-") as tmp:
        clips = Path(tmp) / "clips"
        clips.mkdir()
        rng = np.random.default_rng(0)
        # Stills of a smooth gradient plus noise: footage-like statistics at no encoding cost.
        ramp = np.linspace(0, 255, 64)[None, :, None] * np.array([1.0, 0.6, 0.3])
        for index in range(3):
            image = np.clip(ramp + rng.normal(0, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(clips / f"still{index}.png")
        assets = [
            TrainingAsset(
                key=path.name,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                rights={"attestation": "bench"},
                caption=None,
                asset_id=path.name,
            )
            for path in sorted(clips.iterdir())
        ]
        config = TrainConfig(
            steps=steps,
            seed=0,
            learning_rate=2e-4,
            batch_size=1,
            lora=LoraSettings(rank=16, alpha=16.0),
            quantization=Quantization(quantization),
            height=64,
            width=64,
            frames=33,
            trigger_word="sks",
            lr_scheduler="constant_with_warmup",
            lr_warmup_steps=min(50, steps // 2),
            checkpoint_every=steps,
            device="cpu",
        )
        walls: list[float] = []
        cpus: list[float] = []

        def on_step(report: StepReport) -> None:
            walls.append(time.perf_counter())
            cpus.append(time.process_time())

        trainer = Trainer(
            config,
            base="tiny",
            dataset=TrainingDataset(version="bench", assets=assets, source=FolderSource(clips)),
            storage=RunStorage.local(Path(tmp) / "run"),
            callback=on_step,
            resume=False,
        )
        result = trainer.run()
    return {
        "wall": [b - a for a, b in itertools.pairwise(walls)],
        "cpu": [b - a for a, b in itertools.pairwise(cpus)],
        "final_loss": result.final_loss,
    }


def _children(variants: tuple[str, ...], quantization: str, steps: int) -> list[dict[str, Any]]:
    """Runs one child per variant, all at once, and returns their results in order."""
    command = [
        sys.executable,
        "-m",
        "bench.train_speed",
        "--quantization",
        quantization,
        "--steps",
        str(steps),
    ]
    children = [
        subprocess.Popen([*command, "--child", variant], stdout=subprocess.PIPE, text=True)
        for variant in variants
    ]
    results = []
    for child in children:
        output, _ = child.communicate()
        if child.returncode:
            raise RuntimeError(f"a child exited with status {child.returncode}")
        results.append(dict(json.loads(output.strip().splitlines()[-1])))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.train_speed")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="steps dropped from each run's start")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant, alternating")
    parser.add_argument("--quantization", default="nf4,fp32", help="comma-separated base quantisations")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="run the two variants of a round at the same time (on a machine other work shares)",
    )
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child == "on", args.quantization, args.steps)))
        return

    print(f"Tiny base, quick-preset shape (rank 16, 64x64, 33 frames, batch 1), {args.steps} steps per run,")
    order = "side by side" if args.side_by_side else "alternating"
    print(f"first {args.warmup} dropped, {args.rounds} runs per variant {order}; median step time.")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"load average {os.getloadavg()[0]:.2f} at the start.\n"
    )
    print(
        "| base weights | flush off, wall / CPU | flush on, wall / CPU | speed-up, wall / CPU | "
        "final loss off / on |"
    )
    print("|---|---|---|---|---|", flush=True)
    for quantization in args.quantization.split(","):
        times: dict[tuple[str, str], list[float]] = {(v, c): [] for v in VARIANTS for c in ("wall", "cpu")}
        losses: dict[str, set[float]] = {v: set() for v in VARIANTS}
        for _ in range(args.rounds):
            # Side by side, the variants share whatever else the machine runs; one after the
            # other, each is alone with it.
            groups = [VARIANTS] if args.side_by_side else [(v,) for v in VARIANTS]
            for group in groups:
                for variant, result in zip(group, _children(group, quantization, args.steps), strict=True):
                    for clock in ("wall", "cpu"):
                        times[variant, clock] += result[clock][args.warmup :]
                    losses[variant].add(result["final_loss"])
        off, on = (statistics.median(times[v, "wall"]) for v in VARIANTS)
        off_cpu, on_cpu = (statistics.median(times[v, "cpu"]) for v in VARIANTS)
        print(
            f"| {quantization} | {off * 1e3:.1f} / {off_cpu * 1e3:.1f} ms | {on * 1e3:.1f} / "
            f"{on_cpu * 1e3:.1f} ms | **{off / on:.2f}x** / **{off_cpu / on_cpu:.2f}x** | "
            f"{', '.join(f'{x:.6f}' for x in sorted(losses['off']))} / "
            f"{', '.join(f'{x:.6f}' for x in sorted(losses['on']))} |",
            flush=True,
        )
    print(f"\nLoad average {os.getloadavg()[0]:.2f} at the end.")


if __name__ == "__main__":
    main()
