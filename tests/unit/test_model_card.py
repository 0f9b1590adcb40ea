"""The model card's text: Hugging Face front matter that parses whatever the names hold, and
the look, training and footage sections read from the version and its record."""

from __future__ import annotations

import uuid
from typing import Any

import yaml

from service.models.card import render
from service.models.models import Model, ModelVersion

SHA = "ab" * 32


def _front_matter(card: str) -> tuple[dict[str, Any], str]:
    _, front, body = card.split("---\n", 2)
    return yaml.safe_load(front), body


def _version(**fields: Any) -> tuple[Model, ModelVersion]:
    model = Model(name='Night: "rain" | v2\nsecond line', description="Neon streets.", base_id="tiny")
    version = ModelVersion(
        model_id=uuid.uuid4(),
        number=3,
        base_id="tiny",
        trigger_word="sks",
        config={"steps": 40},
        adapter_sha256=SHA,
        adapter_bytes=10,
        steps=40,
        final_loss=0.12345,
        look=None,
    )
    for name, value in fields.items():
        setattr(version, name, value)
    return model, version


RECORD = {
    "assets": [
        {
            "asset_id": "a1",
            "sha256": "cd" * 32,
            "rights": {"rights": "licensed", "licence_ref": "LIC-7"},
            "caption": "rain | at night\nwet",
        }
    ],
    "hyperparameters": {"learning_rate": 0.0001, "steps": 40},
    "lora": {"rank": 16, "alpha": 16},
}


def test_front_matter_is_the_hubs_and_survives_awkward_names() -> None:
    front, body = _front_matter(render(*_version(), RECORD))
    assert front == {
        "base_model": "tiny",
        "library_name": "diffusers",
        "pipeline_tag": "text-to-video",
        "tags": ["lora", "text-to-video", "diffusers", "rushes"],
        "instance_prompt": "sks",
    }
    assert body.splitlines()[1] == '# Night: "rain" | v2 second line, version 3'
    assert "Neon streets." in body


def test_training_and_footage_come_from_the_record() -> None:
    _, body = _front_matter(render(*_version(), RECORD))
    assert f"sha256 `{SHA}`" in body and "LoRA rank 16, alpha 16" in body and "Final loss: 0.1235" in body
    assert '"learning_rate": 0.0001' in body
    # The caption's pipe and newline stay inside their cell.
    assert f"| `a1` | `{'cd' * 32}` | licensed (LIC-7) | rain \\| at night wet |" in body
    assert "on 1 clip its owner" in body


def test_the_look_section_says_what_training_did() -> None:
    look = {
        "measured": True,
        "moved": True,
        "threshold": 0.1,
        "reduction": 0.62,
        "metrics": {"lightness": {"base": 50.0, "version": 31.5, "footage": 30.0}},
        "distance": {"base": {"total": 4.0}, "version": {"total": 1.52}},
    }
    _, body = _front_matter(render(*_version(look=look), RECORD))
    assert "**62 % closer**" in body
    assert "| Lightness (L*) | 50.00 | 31.50 | 30.00 |" in body
    assert "| Distance to the footage | 4.00 | 1.52 | 0.00 |" in body

    _, body = _front_matter(render(*_version(look={**look, "moved": False, "reduction": 0.03}), RECORD))
    assert "**did not move the look**" in body and "3 % closer" in body and "under the 10 %" in body

    _, body = _front_matter(render(*_version(look={"measured": False, "reason": "It timed out."}), RECORD))
    assert "## Look\n\nIt timed out.\n" in body
    _, body = _front_matter(render(*_version(), RECORD))
    assert "The look was not measured for this version." in body
