"""LoRA fine-tuning of open video models on tenant footage.

The service calls ``train`` (or builds a ``Trainer``) with a ``TrainConfig``, a
``TrainingDataset`` and a ``RunStorage``; ``python -m trainer`` does the same from folders.
"""

import logging

from core.bases.quantization import Quantization

# On import, bitsandbytes warns that an optional CPU kernel it would fetch from the hub is
# missing. The trainer never downloads at run time, so the warning is noise in job logs.
# Set here, before any submodule (or diffusers, or peft) imports bitsandbytes.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

from trainer.config import LoraSettings, TrainConfig
from trainer.data import TrainingAsset, TrainingDataset
from trainer.errors import TrainerInputError
from trainer.export import ExportedAdapter
from trainer.progress import Control, ProgressCallback, StepReport, StopTraining
from trainer.storage import AssetSource, FolderSource, RunStorage
from trainer.train import Trainer, TrainingResult, train

__all__ = [
    "AssetSource",
    "Control",
    "ExportedAdapter",
    "FolderSource",
    "LoraSettings",
    "ProgressCallback",
    "Quantization",
    "RunStorage",
    "StepReport",
    "StopTraining",
    "TrainConfig",
    "Trainer",
    "TrainerInputError",
    "TrainingAsset",
    "TrainingDataset",
    "TrainingResult",
    "train",
]
