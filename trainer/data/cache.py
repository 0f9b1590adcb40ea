"""Precompute VAE latents and prompt embeddings once per dataset version, in storage.

Training then needs neither the VAE nor the text encoder: both are loaded here, used, and
freed before the transformer loads. The cache sits under the dataset version's prefix in a
folder named by a fingerprint of everything that shapes it (base, buckets, frame sampling,
captions, asset digests), so another base or setting never reads stale latents, and a
``manifest.json`` written last marks it complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import safetensors.torch
import torch

from core.storage.base import ObjectNotFoundError, ObjectStorage
from trainer.config import TrainConfig
from trainer.data.assets import TrainingDataset, compose_caption
from trainer.data.buckets import Bucket, choose_bucket, frame_windows, make_buckets
from trainer.data.footage import ClipInfo, frame_stride, probe, read_frames
from trainer.devices import free_memory
from trainer.errors import TrainerInputError
from trainer.models.registry import ModelSpecification

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1


@dataclass(frozen=True)
class CachedSample:
    latents: torch.Tensor  # [c, f, h, w], normalised
    prompt_embeds: torch.Tensor  # [tokens, text_dim], unpadded
    bucket: Bucket
    caption: str
    asset_index: int


@dataclass(frozen=True)
class PreparedData:
    samples: list[CachedSample]
    validation_embeds: list[torch.Tensor]
    negative_embeds: torch.Tensor
    cache_key: str


@dataclass(frozen=True)
class _Window:
    asset_index: int
    bucket: Bucket
    indices: list[int]
    caption: str


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def fingerprint(spec: ModelSpecification, dataset: TrainingDataset, config: TrainConfig) -> str:
    return _digest(
        {
            "format": CACHE_FORMAT,
            "base": spec.base_id,
            "spec": spec.name,
            "shape": [config.frames, config.height, config.width],
            "target_fps": config.target_fps,
            "windows_per_clip": config.windows_per_clip,
            "trigger_word": config.trigger_word,
            # The text encoder is stored as the base is, which shapes the prompt embeddings.
            "text_encoder": config.quantization,
            "assets": [[a.sha256, a.caption] for a in dataset.assets],
        }
    )


def _plan(spec: ModelSpecification, dataset: TrainingDataset, config: TrainConfig) -> list[_Window]:
    """Probe every asset before any model loads, so bad footage fails fast."""
    buckets = make_buckets(
        config.height,
        config.width,
        config.frames,
        temporal_factor=spec.temporal_factor,
        spatial_multiple=spec.spatial_multiple,
    )
    windows: list[_Window] = []
    for index, asset in enumerate(dataset.assets):
        name = asset.asset_id or asset.key
        caption = compose_caption(asset.caption, config.trigger_word, name)
        try:
            with dataset.source.local_path(asset.key) as path:
                info: ClipInfo = probe(path, name)
        except ObjectNotFoundError:
            raise TrainerInputError(f"{name}: footage not found") from None
        stride = frame_stride(info, config.target_fps)
        usable = (info.frames - 1) // stride + 1
        bucket = choose_bucket(buckets, height=info.height, width=info.width, frames=usable)
        for indices in frame_windows(
            info.frames, bucket.frames, stride=stride, max_windows=config.windows_per_clip
        ):
            windows.append(_Window(index, bucket, indices, caption))
    return windows


def _load_prompts(storage: ObjectStorage, key: str) -> tuple[list[torch.Tensor], torch.Tensor] | None:
    try:
        tensors = safetensors.torch.load(storage.get_bytes(key))
    except ObjectNotFoundError:
        return None
    count = sum(1 for name in tensors if name.startswith("prompt."))
    return [tensors[f"prompt.{i}"] for i in range(count)], tensors["negative"]


def _load_samples(storage: ObjectStorage, prefix: str) -> list[CachedSample] | None:
    try:
        manifest = json.loads(storage.get_bytes(f"{prefix}manifest.json"))
    except ObjectNotFoundError:
        return None
    samples = []
    for entry in manifest["samples"]:
        tensors = safetensors.torch.load(storage.get_bytes(prefix + entry["key"]))
        samples.append(
            CachedSample(
                latents=tensors["latents"],
                prompt_embeds=tensors["prompt_embeds"],
                bucket=Bucket.parse(entry["bucket"]),
                caption=entry["caption"],
                asset_index=entry["asset_index"],
            )
        )
    return samples


def prepare(
    spec: ModelSpecification,
    dataset: TrainingDataset,
    config: TrainConfig,
    storage: ObjectStorage,
    cache_prefix: str,
    validation_prompts: Sequence[str],
) -> PreparedData:
    prefix = f"{cache_prefix}{fingerprint(spec, dataset, config)}/"
    prompts_digest = _digest([list(validation_prompts), config.validation_negative_prompt])
    prompts_key = f"{prefix}prompts-{prompts_digest}.safetensors"
    samples = _load_samples(storage, prefix)
    prompts = _load_prompts(storage, prompts_key)
    if samples is not None and prompts is not None:
        logger.info("latent cache hit: %s (%d samples)", prefix, len(samples))
        return PreparedData(samples, prompts[0], prompts[1], prefix)

    windows = _plan(spec, dataset, config) if samples is None else []
    captions = sorted({w.caption for w in windows})
    texts = [*captions, *validation_prompts, config.validation_negative_prompt]
    # The encoder's layers are stored as the base's will be, and it is gone before the VAE
    # loads: caching then needs no more memory than training (``estimate_peak_memory``).
    encoder = spec.load_text_encoder(config.quantization)
    # One prompt per forward keeps the activations to one prompt's, however many captions.
    encoded = [embeds for text in texts for embeds in spec.encode_prompts(encoder, [text])]
    del encoder
    free_memory(spec.device)
    by_caption = dict(zip(captions, encoded, strict=False))
    validation = encoded[len(captions) : len(captions) + len(validation_prompts)]
    negative = encoded[-1]
    storage.put_bytes(
        prompts_key,
        safetensors.torch.save(
            {**{f"prompt.{i}": e for i, e in enumerate(validation)}, "negative": negative}
        ),
    )

    if samples is None:
        samples = _encode_windows(spec, dataset, windows, by_caption, storage, prefix)
    return PreparedData(samples, validation, negative, prefix)


def _encode_windows(
    spec: ModelSpecification,
    dataset: TrainingDataset,
    windows: list[_Window],
    by_caption: dict[str, torch.Tensor],
    storage: ObjectStorage,
    prefix: str,
) -> list[CachedSample]:
    vae = spec.load_vae()
    samples: list[CachedSample] = []
    entries = []
    for number, window in enumerate(windows):
        asset = dataset.assets[window.asset_index]
        name = asset.asset_id or asset.key
        with dataset.source.local_path(asset.key) as path:
            video = read_frames(
                path, name, window.indices, height=window.bucket.height, width=window.bucket.width
            )
        latents = spec.encode_video(vae, video)
        prompt_embeds = by_caption[window.caption]
        key = f"samples/{number:06d}.safetensors"
        storage.put_bytes(
            prefix + key, safetensors.torch.save({"latents": latents, "prompt_embeds": prompt_embeds})
        )
        samples.append(
            CachedSample(latents, prompt_embeds, window.bucket, window.caption, window.asset_index)
        )
        entries.append(
            {
                "key": key,
                "bucket": str(window.bucket),
                "caption": window.caption,
                "asset_index": window.asset_index,
            }
        )
    del vae
    free_memory(spec.device)
    storage.put_bytes(
        f"{prefix}manifest.json", json.dumps({"format": CACHE_FORMAT, "samples": entries}).encode()
    )
    logger.info("latent cache written: %s (%d samples)", prefix, len(samples))
    return samples
