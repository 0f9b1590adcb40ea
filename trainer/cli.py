"""``python -m trainer``: fine-tune from a folder of clips, without the service.

    python -m trainer CLIPS OUTPUT --base tiny --steps 200 --trigger sks

OUTPUT receives ``cache/``, ``checkpoints/``, ``validation/`` and ``adapter/`` (the exported
``adapter.safetensors``, ``adapter_config.json`` and ``training_record.json``). The server
exposes this as ``rushes-server train`` by running it in a subprocess.

Exit status: 0 done, 1 bad input (one line on stderr), 2 bad arguments, 3 internal failure, 130 interrupted
(after a checkpoint; rerun with ``--resume``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from tqdm import tqdm

from core.bases.quantization import Quantization
from trainer import checkpoint
from trainer.config import OFFLOAD_ACTIVATIONS, LoraSettings, TrainConfig
from trainer.data import TrainingAsset, TrainingDataset
from trainer.errors import TrainerInputError
from trainer.progress import Control, StepReport
from trainer.storage import FolderSource, RunStorage
from trainer.train import Trainer

FOOTAGE_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".png", ".jpg", ".jpeg"}
EXIT_INPUT = 1
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
_RIGHTS = {"attestation": "asserted by the operator of the local trainer CLI"}


def _resolution(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 480x832, got {text!r}") from None
    return height, width


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer", description="Fine-tune a video LoRA on a folder of clips."
    )
    parser.add_argument(
        "clips", type=Path, help="folder of clips (mp4, mov, mkv, webm) and stills (png, jpg)"
    )
    parser.add_argument(
        "output", type=Path, help="folder for the cache, checkpoints, validation clips and adapter"
    )
    parser.add_argument("--base", default="tiny", help="'tiny' (built in) or a local diffusers model folder")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    parser.add_argument(
        "--targets", default=None, help="comma-separated LoRA target modules (default: the base's)"
    )
    parser.add_argument(
        "--quantization", choices=[q.value for q in Quantization], default=Quantization.NF4.value
    )
    parser.add_argument(
        "--offload-activations",
        choices=OFFLOAD_ACTIVATIONS,
        default="auto",
        help="keep checkpointed block inputs in host memory (auto: where the plan exceeds 20 GiB without)",
    )
    parser.add_argument("--resolution", type=_resolution, default=(480, 832), metavar="HxW")
    parser.add_argument("--frames", type=int, default=81, help="frames per sample: 1 + a multiple of 4")
    parser.add_argument("--trigger", default=None, help="trigger word, leading every caption")
    parser.add_argument(
        "--no-captions",
        dest="captions",
        action="store_false",
        help="ignore sidecar captions (clip.mp4 + clip.txt) and caption with the trigger word alone",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUTPUT")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target-fps", type=float, default=16.0)
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--validate-every", type=int, default=0, help="render validation clips every N steps")
    parser.add_argument("--validation-prompt", action="append", default=None, dest="validation_prompts")
    parser.add_argument(
        "--validation-steps", type=int, default=30, help="inference steps per validation clip"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser


def discover(clips: Path, *, captions: bool, output: Path | None = None) -> list[TrainingAsset]:
    """Every clip and still under ``clips``, except inside ``output`` (its validation MP4s are no footage)."""
    if not clips.is_dir():
        raise TrainerInputError(f"clips folder {clips} does not exist")
    skip = output.resolve() if output is not None else None
    files = sorted(
        p
        for p in clips.rglob("*")
        if p.is_file()
        and p.suffix.lower() in FOOTAGE_SUFFIXES
        and (skip is None or not p.resolve().is_relative_to(skip))
    )
    if not files:
        raise TrainerInputError(f"no clips or stills in {clips} ({', '.join(sorted(FOOTAGE_SUFFIXES))})")
    assets = []
    for path in files:
        sidecar = path.with_suffix(".txt")
        caption = sidecar.read_text(encoding="utf-8").strip() if captions and sidecar.is_file() else None
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(4 << 20):
                digest.update(chunk)
        key = path.relative_to(clips).as_posix()
        assets.append(
            TrainingAsset(key=key, sha256=digest.hexdigest(), rights=_RIGHTS, caption=caption, asset_id=key)
        )
    return assets


def _config(args: argparse.Namespace) -> TrainConfig:
    height, width = args.resolution
    return TrainConfig(
        steps=args.steps,
        seed=args.seed,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        lora=LoraSettings(
            rank=args.rank,
            alpha=args.alpha if args.alpha is not None else float(args.rank),
            targets=tuple(t.strip() for t in args.targets.split(",") if t.strip()) if args.targets else None,
        ),
        quantization=Quantization(args.quantization),
        offload_activations=args.offload_activations,
        height=height,
        width=width,
        frames=args.frames,
        target_fps=args.target_fps,
        trigger_word=args.trigger,
        checkpoint_every=args.checkpoint_every,
        validation_every=args.validate_every,
        validation_prompts=tuple(args.validation_prompts or ()),
        validation_inference_steps=args.validation_steps,
        device=args.device,
    )


class _Progress:
    """tqdm bar driven by step reports; the first Ctrl-C asks the trainer to checkpoint and stop."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: tqdm[None] | None = None  # opened at the first step, after caching finishes
        self.interrupted = False

    def on_sigint(self, _signum: int, _frame: FrameType | None) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        print("stopping after this step (checkpoint first); press Ctrl-C again to abort", file=sys.stderr)

    def __call__(self, report: StepReport) -> Control | None:
        if self.bar is None:
            self.bar = tqdm(total=self.total, initial=report.step - 1, unit="step", dynamic_ncols=True)
        self.bar.set_postfix(
            loss=f"{report.loss:.4f}",
            lr=f"{report.learning_rate:.2e}",
            mem=f"{report.peak_memory_bytes / 2**30:.2f}GiB",
            refresh=False,
        )
        self.bar.update(report.step - self.bar.n)
        return Control.STOP if self.interrupted else None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    assets = discover(args.clips, captions=args.captions, output=args.output)
    if args.output.exists() and not args.output.is_dir():
        raise TrainerInputError(f"output {args.output} is a file, not a folder")
    # The cache is keyed by content, so the same clips map to the same cached latents.
    version = hashlib.sha256(json.dumps([[a.key, a.sha256, a.caption] for a in assets]).encode()).hexdigest()[
        :16
    ]
    dataset = TrainingDataset(version=version, assets=assets, source=FolderSource(args.clips))
    storage = RunStorage.local(args.output)
    progress = _Progress(config.steps)
    # Built before anything runs: it checks the base and the geometry against it.
    trainer = Trainer(
        config, base=args.base, dataset=dataset, storage=storage, callback=progress, resume=True
    )
    has_checkpoint = checkpoint.latest(storage.storage, storage.checkpoint_prefix) is not None
    if args.resume and not has_checkpoint:
        raise TrainerInputError(f"--resume given but {args.output} holds no checkpoint")
    if has_checkpoint and not args.resume:
        raise TrainerInputError(
            f"{args.output} already holds checkpoints: pass --resume, or choose an empty folder"
        )
    previous = signal.signal(signal.SIGINT, progress.on_sigint)
    try:
        result = trainer.run()
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()
    if result.status == "stopped":
        print(
            f"stopped at step {result.step}; checkpoint {args.output / (result.checkpoint_key or '')}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    assert result.export is not None
    loss = "n/a" if result.final_loss is None else f"{result.final_loss:.4f}"
    print(f"adapter: {args.output / result.export.adapter_key}")
    print(f"record:  {args.output / result.export.record_key}")
    print(f"final loss {loss}, peak memory {result.peak_memory_bytes / 2**30:.2f} GiB")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return run(args)
    except TrainerInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except Exception:
        # Our fault, not the footage's: a distinct status, and the traceback for the report.
        logging.getLogger("trainer").exception("training failed")
        print("error: training failed unexpectedly (see the traceback above)", file=sys.stderr)
        return EXIT_INTERNAL
