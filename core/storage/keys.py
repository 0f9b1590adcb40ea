"""Every object key is built here, and every one begins ``tenants/{tenant_id}/``.

No API accepts a raw key: handlers name a tenant and an entity, this module names the object.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

TENANTS_ROOT = "tenants/"
# The files of one exported adapter, under ``TenantKeys.adapter``.
ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
TRAINING_RECORD_FILE = "training_record.json"
MODEL_CARD_FILE = "README.md"  # the Hugging Face model card, written with the version
# The files a succeeded generation leaves under ``TenantKeys.outputs``, with their media types.
OUTPUT_VIDEO = "video.mp4"  # H.264
OUTPUT_POSTER = "poster.jpg"  # a still frame
OUTPUT_PREVIEW = "preview.webp"  # a small animated preview
OUTPUT_MEDIA_TYPES = {OUTPUT_VIDEO: "video/mp4", OUTPUT_POSTER: "image/jpeg", OUTPUT_PREVIEW: "image/webp"}


@dataclass(frozen=True, slots=True)
class TenantKeys:
    tenant_id: UUID

    @property
    def root(self) -> str:
        return f"{TENANTS_ROOT}{self.tenant_id}/"

    def footage(self, asset_id: UUID) -> str:
        return f"{self.root}footage/{asset_id}"

    def poster(self, asset_id: UUID) -> str:
        return f"{self.root}thumbs/{asset_id}.jpg"

    def asset_objects(self, asset_id: UUID) -> tuple[str, ...]:
        """Every object derived from one asset, so that deleting the asset removes them all."""
        return (self.footage(asset_id), self.poster(asset_id))

    def cache(self, dataset_version_id: UUID) -> str:
        return f"{self.root}cache/{dataset_version_id}/"

    def checkpoints(self, job_id: UUID) -> str:
        return f"{self.root}checkpoints/{job_id}/"

    def samples(self, job_id: UUID) -> str:
        """Validation clips a run renders; the trainer writes ``step-NNNNNNNN/II.mp4`` here."""
        return f"{self.checkpoints(job_id)}validation/"

    def sample(self, job_id: UUID, step: int, index: int) -> str:
        return f"{self.samples(job_id)}step-{step:08d}/{index:02d}.mp4"

    def adapter(self, model_version_id: UUID) -> str:
        return f"{self.root}adapters/{model_version_id}/"

    def adapter_file(self, model_version_id: UUID) -> str:
        return f"{self.adapter(model_version_id)}{ADAPTER_FILE}"

    def training_record(self, model_version_id: UUID) -> str:
        return f"{self.adapter(model_version_id)}{TRAINING_RECORD_FILE}"

    def model_card(self, model_version_id: UUID) -> str:
        return f"{self.adapter(model_version_id)}{MODEL_CARD_FILE}"

    def outputs(self, generation_id: UUID) -> str:
        return f"{self.root}outputs/{generation_id}/"

    def output(self, generation_id: UUID, name: str) -> str:
        if name not in OUTPUT_MEDIA_TYPES:
            raise ValueError(f"not a generation output: {name!r}")
        return f"{self.outputs(generation_id)}{name}"
