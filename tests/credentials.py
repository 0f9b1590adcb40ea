"""Reading a video's C2PA content credentials back, as a verifier holding the deployment's CA would."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import c2pa


@dataclass(frozen=True)
class Credentials:
    state: str | None  # "Trusted": signed by a chain to the CA; "Valid": intact, signer unknown
    manifest: dict[str, Any]

    def assertion(self, label: str) -> dict[str, Any]:
        return next(a["data"] for a in self.manifest["assertions"] if a["label"].startswith(label))


def read_credentials(video: bytes, trust_anchor: bytes | None = None) -> Credentials:
    settings: dict[str, Any] = {"verify": {"verify_trust": trust_anchor is not None}}
    if trust_anchor is not None:
        settings["trust"] = {"trust_anchors": trust_anchor.decode()}
    with c2pa.Reader("video/mp4", io.BytesIO(video), context=c2pa.Context.from_dict(settings)) as reader:
        manifest = reader.get_active_manifest()
        assert manifest is not None, "the video carries no C2PA manifest"
        return Credentials(reader.get_validation_state(), manifest)
