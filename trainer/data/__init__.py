"""Footage in, cached latents and prompt embeddings out."""

from trainer.data.assets import TrainingAsset, TrainingDataset, compose_caption
from trainer.data.buckets import Bucket, choose_bucket, frame_windows, make_buckets
from trainer.data.cache import CachedSample, PreparedData, prepare
from trainer.data.sampler import BucketBatchSampler

__all__ = [
    "Bucket",
    "BucketBatchSampler",
    "CachedSample",
    "PreparedData",
    "TrainingAsset",
    "TrainingDataset",
    "choose_bucket",
    "compose_caption",
    "frame_windows",
    "make_buckets",
    "prepare",
]
