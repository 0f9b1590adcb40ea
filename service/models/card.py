"""A model version's card: a ``README.md`` in the Hugging Face model-card format.

It is written beside the adapter when the version is made (``TenantKeys.model_card``), so the
adapter's folder is what the Hub expects of a LoRA repository: the weights, their config and
a card. Everything on it comes from the version's row and its training record; the footage
is named by hash and rights, never by content, so the card can travel with the adapter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from service.models.models import Model, ModelVersion

# Litestar adds "; charset=utf-8" to text types it sends.
MEDIA_TYPE = "text/markdown"
# What a cell shows where a number or field is missing.
_NONE = "n/a"

# The look properties in the order the model page shows them, with their units.
_LOOK_ROWS = (
    ("colourfulness", "Colourfulness", "chroma"),
    ("a", "Cast, green to red", "a*"),
    ("b", "Cast, blue to yellow", "b*"),
    ("lightness", "Lightness", "L*"),
    ("contrast", "Contrast", "L*"),
    ("grain", "Grain", "L*"),
    ("sharpness", "Sharpness", "L*/px"),
    ("flicker", "Flicker", "L*/frame"),
)


def _yaml_scalar(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar, so names with colons, quotes or
    # newlines cannot break the front matter.
    return json.dumps(value, ensure_ascii=False)


def _front_matter(model: Model, version: ModelVersion) -> list[str]:
    lines = [
        "---",
        f"base_model: {_yaml_scalar(version.base_id)}",
        "library_name: diffusers",
        "pipeline_tag: text-to-video",
        "tags:",
        *(f"  - {_yaml_scalar(tag)}" for tag in ("lora", "text-to-video", "diffusers", "rushes")),
    ]
    if version.trigger_word:
        lines.append(f"instance_prompt: {_yaml_scalar(version.trigger_word)}")
    return [*lines, "---"]


def _cell(value: object) -> str:
    # A pipe or a newline in a caption would end the table cell early.
    return str(value).replace("|", "\\|").replace("\n", " ")


def _number(value: float | None, places: int = 2) -> str:
    return _NONE if value is None else f"{value:.{places}f}"


def _look(look: dict[str, Any] | None) -> list[str]:
    if not look:
        return ["The look was not measured for this version."]
    if not look.get("measured"):
        # The reason is a whole sentence, as ``trainer.look.unmeasured`` stores it.
        return [look.get("reason") or "The look was not measured."]
    closer = round(100 * float(look["reduction"]))
    verdict = (
        f"Generations came **{closer} % closer** to the footage's look than the base's "
        "(same prompts and seeds)."
        if look["moved"]
        else f"The adapter **did not move the look**: generations came {closer} % closer to the footage "
        f"than the base's, under the {round(100 * float(look['threshold']))} % that counts as learned."
    )
    rows = ["| Property | Base | This version | Footage |", "| --- | --- | --- | --- |"]
    metrics = look.get("metrics", {})
    for name, label, unit in _LOOK_ROWS:
        values = metrics.get(name, {})
        rows.append(
            f"| {label} ({unit}) | {_number(values.get('base'))} | "
            f"{_number(values.get('version'))} | {_number(values.get('footage'))} |"
        )
    distance = look.get("distance", {})
    rows.append(
        f"| Distance to the footage | {_number(distance.get('base', {}).get('total'))} | "
        f"{_number(distance.get('version', {}).get('total'))} | 0.00 |"
    )
    return [verdict, "", *rows]


def _training(version: ModelVersion, record: dict[str, Any]) -> list[str]:
    settings: dict[str, Any] = record.get("hyperparameters") or version.config
    lora: dict[str, Any] = record.get("lora") or {}
    lines = [
        f"- Base: `{version.base_id}`",
        f"- Steps: {version.steps}",
        f"- Final loss: {_number(version.final_loss, 4)}",
        f"- LoRA rank {lora.get('rank', _NONE)}, alpha {lora.get('alpha', _NONE)}",
        f"- Adapter: `adapter.safetensors`, sha256 `{version.adapter_sha256}`",
    ]
    if version.trigger_word:
        lines.append(f"- Trigger word: `{version.trigger_word}`")
    if settings:
        settings_json = json.dumps(settings, indent=2, sort_keys=True, default=str)
        lines += ["", "Settings:", "", "```json", settings_json, "```"]
    return lines


def _footage(assets: Iterable[dict[str, Any]]) -> list[str]:
    rows = ["| Clip | sha256 | Rights | Caption |", "| --- | --- | --- | --- |"]
    for asset in assets:
        # As ``worker.run_job`` records it: the attestation ("owned" or "licensed") and the
        # licence's reference, if any.
        rights: dict[str, Any] = asset.get("rights") or {}
        basis, reference = rights.get("rights", _NONE), rights.get("licence_ref")
        licence = f" ({_cell(reference)})" if reference else ""
        rows.append(
            f"| `{asset.get('asset_id', _NONE)}` | `{asset.get('sha256', _NONE)}` | "
            f"{_cell(basis)}{licence} | {_cell(asset.get('caption') or '')} |"
        )
    return rows


def render(model: Model, version: ModelVersion, record: dict[str, Any]) -> str:
    """The card of one version, from its row and its training record (``training_record.json``)."""
    # One line whatever the name holds: a newline would end the heading.
    title = f"{' '.join(model.name.split())}, version {version.number}"
    usage = [
        "```python",
        "import torch",
        "from diffusers import WanPipeline",
        "",
        f'pipe = WanPipeline.from_pretrained("{version.base_id}", torch_dtype=torch.bfloat16)',
        'pipe.load_lora_weights(".", weight_name="adapter.safetensors")',
        "```",
    ]
    assets = record.get("assets") or []
    sections = [
        *_front_matter(model, version),
        "",
        f"# {title}",
        "",
        *([model.description.strip(), ""] if model.description.strip() else []),
        f"A LoRA adapter for `{version.base_id}`, fine-tuned by Rushes on {len(assets)} clip"
        f"{'' if len(assets) == 1 else 's'} its owner attested to own or license.",
        "",
        "## Use",
        "",
        *usage,
        "",
        "## Look",
        "",
        *_look(version.look),
        "",
        "## Training",
        "",
        *_training(version, record),
        "",
        "## Footage",
        "",
        *_footage(assets),
        "",
    ]
    return "\n".join(sections)
