"""Wan 2.1 text-to-video (1.3B and 14B) in the diffusers layout, loaded from a local folder.

Expected folder: ``model_index.json`` plus ``transformer/``, ``vae/``, ``text_encoder/``,
``tokenizer/`` and ``scheduler/``, as in Wan-AI/Wan2.1-T2V-1.3B-Diffusers. Nothing is
downloaded: the service provisions base folders ahead of time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import diffusers
import torch
import torch.nn.functional as F
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.video_processor import VideoProcessor
from safetensors import safe_open
from torch import nn
from transformers import AutoTokenizer, UMT5Config

from core.bases.architecture import (
    SPATIAL_MULTIPLE,
    TEMPORAL_FACTOR,
    WAN_TEXT_TOKENS,
    TransformerDims,
    wan_transformer_dims,
)
from core.bases.quantization import Quantization
from trainer.errors import TrainerInputError
from trainer.models import flow_matching
from trainer.models._untyped import AutoencoderKLWan, UMT5EncoderModel, WanTransformer3DModel, prompt_clean
from trainer.models.registry import ModelSpecification, NoisedBatch, TextEncoder, register
from trainer.quantize import load_streaming, parameters_on_meta, replace_linears

_COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
_WEIGHTS = "diffusion_pytorch_model.safetensors"
_TEXT_ENCODER_WEIGHTS = "model.safetensors"
# UMT5's token embedding is tied to the encoder's input embedding; checkpoints may hold both.
_EMBEDDING = "shared.weight"
_TIED_EMBEDDING = "encoder.embed_tokens.weight"
# LLM.int8()'s outlier threshold as transformers applies it to T5-family encoders, whose
# activations have a few very large features that row-wise int8 would flatten.
_TEXT_ENCODER_INT8_THRESHOLD = 6.0


def _safetensors_tensors(folder: Path, weights: str) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor of a (possibly sharded) safetensors checkpoint, one at a time."""
    index = folder / f"{weights}.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / weights).is_file():
        shards = [weights]
    else:
        raise TrainerInputError(f"{folder} holds no safetensors weights")
    for shard in shards:
        with safe_open(str(folder / shard), framework="pt", device="cpu") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                yield key, handle.get_tensor(key)


def _quantizes_in_text_encoder(name: str) -> bool:
    # The layers' attention and gated-FFN input projections. ``wo`` stays in the compute
    # dtype, as transformers keeps it (``_keep_in_fp32_modules``): UMT5's FFN casts its
    # activations to ``wo``'s weight dtype, which for a 4-bit layer is its packed uint8, and
    # int8 layers cast their inputs to fp16, which T5's FFN activations can overflow.
    return name.startswith("encoder.block.") and not name.endswith(".wo")


def load_umt5_encoder(
    config: UMT5Config,
    tensors: Iterable[tuple[str, torch.Tensor]],
    quantization: Quantization,
    *,
    device: torch.device,
    dtype: torch.dtype,
) -> nn.Module:
    """A UMT5 encoder streamed tensor by tensor into a meta skeleton, its layer linears
    quantised as they arrive (the transformer's path), its token embedding on the host."""
    with parameters_on_meta():
        model = UMT5EncoderModel(config)
    # One module for both names, so the embedding is loaded (and placed) once.
    model.encoder.embed_tokens = model.shared
    replace_linears(
        model,
        quantization,
        compute_dtype=dtype,
        should_quantize=_quantizes_in_text_encoder,
        int8_threshold=_TEXT_ENCODER_INT8_THRESHOLD,
    )
    load_streaming(
        model,
        tensors,
        device=device,
        dtype=dtype,
        ignore_unexpected=lambda name: name == _TIED_EMBEDDING,
        on_host=lambda name: name == _EMBEDDING,
    )
    loaded: nn.Module = model.eval()
    return loaded


@register(pipeline_class="WanPipeline")
class WanSpecification(ModelSpecification):
    name = "wan2.1"
    family = "wan2.1"
    # Attention projections of self- and cross-attention, and both FFN projections.
    default_lora_targets = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")
    temporal_factor = TEMPORAL_FACTOR
    spatial_multiple = SPATIAL_MULTIPLE
    max_sequence_length = WAN_TEXT_TOKENS

    def __init__(self, base: str, *, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(base, device=device, dtype=dtype)
        self._scheduler_config: dict[str, Any] | None = None
        self._check_folder()

    @property
    def folder(self) -> Path:
        return Path(self.base)

    def _check_folder(self) -> None:
        missing = [name for name in _COMPONENTS if not (self.folder / name).is_dir()]
        if missing:
            raise TrainerInputError(f"base folder {self.folder} lacks {', '.join(missing)}")

    # Component sources: the built-in tiny base overrides these five.
    def _transformer_config(self) -> dict[str, Any]:
        config: dict[str, Any] = WanTransformer3DModel.load_config(self.folder / "transformer")
        return config

    def _transformer_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        yield from _safetensors_tensors(self.folder / "transformer", _WEIGHTS)

    def _text_encoder_config(self) -> UMT5Config:
        config: UMT5Config = UMT5Config.from_pretrained(self.folder / "text_encoder")
        return config

    def _text_encoder_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        yield from _safetensors_tensors(self.folder / "text_encoder", _TEXT_ENCODER_WEIGHTS)

    def _tokenizer(self) -> Any:
        return AutoTokenizer.from_pretrained(self.folder / "tokenizer")

    def _new_scheduler(self) -> SchedulerMixin:
        if self._scheduler_config is None:
            self._scheduler_config = json.loads(
                (self.folder / "scheduler" / "scheduler_config.json").read_text()
            )
        cls = getattr(diffusers, self._scheduler_config["_class_name"])
        scheduler: SchedulerMixin = cls.from_config(self._scheduler_config)
        return scheduler

    def load_text_encoder(self, quantization: Quantization = Quantization.BF16) -> TextEncoder:
        model = load_umt5_encoder(
            self._text_encoder_config(),
            self._text_encoder_tensors(),
            quantization,
            device=self.device,
            dtype=self.dtype,
        )
        return TextEncoder(tokenizer=self._tokenizer(), model=model)

    def load_vae(self) -> nn.Module:
        vae: nn.Module = AutoencoderKLWan.from_pretrained(self.folder / "vae", torch_dtype=torch.float32)
        return vae.to(self.device).eval()

    # Condition models
    @torch.no_grad()
    def encode_prompts(self, encoder: TextEncoder, prompts: Sequence[str]) -> list[torch.Tensor]:
        # Same cleaning, padding and truncation as WanPipeline, so cached embeddings equal
        # what the stock pipeline computes at inference.
        inputs = encoder.tokenizer(
            [prompt_clean(p) for p in prompts],
            padding="max_length",
            max_length=self.max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        mask = inputs.attention_mask
        # The embedding table stays on the host (``load_umt5_encoder``): look the tokens up
        # there and hand the layers their rows.
        model: Any = encoder.model
        embedding: nn.Embedding = model.get_input_embeddings()
        embeds = embedding(inputs.input_ids.to(embedding.weight.device)).to(self.device)
        hidden = model(inputs_embeds=embeds, attention_mask=mask.to(self.device)).last_hidden_state
        lengths = mask.gt(0).sum(dim=1).tolist()
        return [h[:n].float().cpu().contiguous() for h, n in zip(hidden, lengths, strict=True)]

    def batch_prompt_embeds(self, embeds: Sequence[torch.Tensor]) -> torch.Tensor:
        padded = [F.pad(e, (0, 0, 0, self.max_sequence_length - e.shape[0])) for e in embeds]
        return torch.stack(padded).to(device=self.device, dtype=self.dtype)

    # Latent model
    def _latent_stats(self, vae: nn.Module, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        config: Any = vae.config
        mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1).to(like.device, like.dtype)
        inv_std = 1.0 / torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1).to(
            like.device, like.dtype
        )
        return mean, inv_std

    @torch.no_grad()
    def encode_video(self, vae: nn.Module, video: torch.Tensor) -> torch.Tensor:
        pixels = video.unsqueeze(0).to(device=self.device, dtype=torch.float32)
        # The posterior mean, not a sample: Wan's posterior variance is tiny, and a cached
        # mean keeps the cache deterministic and reusable across runs.
        latents: torch.Tensor = vae.encode(pixels).latent_dist.mode()  # type: ignore[operator]
        mean, inv_std = self._latent_stats(vae, latents)
        return ((latents - mean) * inv_std)[0].float().cpu().contiguous()

    @torch.no_grad()
    def decode_latents(self, vae: nn.Module, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.to(self.device, torch.float32)
        mean, inv_std = self._latent_stats(vae, latents)
        # Written exactly as WanPipeline writes it, so both give bit-identical frames.
        latents = latents / inv_std + mean
        # The VAE decodes in fp32 as in the pipeline, even inside the trainer's bf16 autocast.
        with torch.autocast(self.device.type, enabled=False):
            video = vae.decode(latents, return_dict=False)[0]  # type: ignore[operator]
        frames = VideoProcessor(vae_scale_factor=8).postprocess_video(video, output_type="pt")
        assert isinstance(frames, torch.Tensor)
        return frames.permute(0, 1, 3, 4, 2).float().cpu()

    # Denoiser
    def transformer_dims(self) -> TransformerDims:
        return wan_transformer_dims(self._transformer_config(), text_tokens=self.max_sequence_length)

    def load_transformer(self, quantization: Quantization) -> nn.Module:
        with parameters_on_meta():
            model = WanTransformer3DModel.from_config(self._transformer_config())
        # Only the blocks' linears (about 99% of the weights) are quantised; the embedders,
        # norms and output head are small and sensitive, and stay in the compute dtype.
        replace_linears(
            model,
            quantization,
            compute_dtype=self.dtype,
            should_quantize=lambda name: name.startswith("blocks."),
        )
        load_streaming(
            model,
            self._transformer_tensors(),
            device=self.device,
            dtype=self.dtype,
            keep_in_fp32=model._keep_in_fp32_modules or (),
            ignore_unexpected=lambda name: "norm_added_q" in name,
        )
        model.requires_grad_(False)
        loaded: nn.Module = model
        return loaded

    def prepare_latents(
        self, latents: torch.Tensor, generator: torch.Generator, *, flow_shift: float, timestep_sampling: str
    ) -> NoisedBatch:
        # Noise and sigmas come from a CPU generator so a run is the same on CPU and CUDA.
        noise = torch.randn(latents.shape, generator=generator, dtype=torch.float32)
        sigmas = flow_matching.sample_sigmas(
            latents.shape[0], generator, shift=flow_shift, scheme=timestep_sampling
        )
        latents = latents.float()
        noisy = flow_matching.add_noise(latents, noise, sigmas)
        return NoisedBatch(
            noisy_latents=noisy.to(self.device),
            timesteps=(sigmas * flow_matching.NUM_TRAIN_TIMESTEPS).to(self.device),
            target=(noise - latents).to(self.device),
            sigmas=sigmas,
        )

    def forward(
        self,
        transformer: nn.Module,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        prompt_embeds: torch.Tensor,
    ) -> torch.Tensor:
        output: torch.Tensor = transformer(
            hidden_states=noisy_latents.to(self.dtype),
            timestep=timesteps,
            encoder_hidden_states=prompt_embeds.to(self.dtype),
            return_dict=False,
        )[0]
        return output

    def loss(self, prediction: torch.Tensor, batch: NoisedBatch) -> torch.Tensor:
        return F.mse_loss(prediction.float(), batch.target.float())

    @torch.no_grad()
    def sample(
        self,
        transformer: nn.Module,
        vae: nn.Module,
        prompt_embeds: torch.Tensor,
        negative_embeds: torch.Tensor | None,
        *,
        noise: torch.Tensor,
        steps: int,
        guidance: float | torch.Tensor,
        on_step: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        # The same loop as WanPipeline.__call__ (T2V, Wan 2.1), kept step for step so that
        # validation clips match what tenants get from the stock pipeline with the export.
        scheduler = self._new_scheduler()
        scheduler.set_timesteps(steps, device=self.device)  # type: ignore[attr-defined]
        scheduler.set_begin_index(0)  # type: ignore[attr-defined]
        latents = noise.to(device=self.device, dtype=torch.float32)
        scale = guidance
        for index, t in enumerate(scheduler.timesteps):  # type: ignore[attr-defined]
            timestep = t.expand(latents.shape[0])
            prediction = self.forward(transformer, latents, timestep, prompt_embeds)
            if negative_embeds is not None:
                unconditional = self.forward(transformer, latents, timestep, negative_embeds)
                if isinstance(guidance, torch.Tensor):
                    # Per-sample scales in the prediction's dtype, as a Python float would be.
                    scale = guidance.to(prediction.device, prediction.dtype).view(-1, 1, 1, 1, 1)
                prediction = unconditional + scale * (prediction - unconditional)
            latents = scheduler.step(prediction, t, latents, return_dict=False)[0]  # type: ignore[attr-defined]
            if on_step is not None:
                on_step(index + 1)
        return self.decode_latents(vae, latents)

    def export_lora_state_dict(self, peft_state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # WanLoraLoaderMixin expects peft keys under the pipeline component's name.
        return {
            f"transformer.{key}": tensor.detach().cpu().contiguous()
            for key, tensor in peft_state_dict.items()
        }
