"""Content credentials: every generated video states, verifiably, which model made it for whom."""

from __future__ import annotations

import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from core.settings import ProvenanceSettings, Settings
from service.generations.queue import ClaimedGeneration
from tests.credentials import read_credentials
from trainer.video import encode_mp4
from worker.provenance import (
    CA_FILE,
    CHAIN_FILE,
    GENERATION_ASSERTION,
    KEY_FILE,
    TRAINED_ALGORITHMIC_MEDIA,
    ContentCredentials,
    ProvenanceError,
    local_authority,
)

GENERATION = ClaimedGeneration(
    id=uuid.uuid4(),
    tenant_id=uuid.uuid4(),
    model_id=uuid.uuid4(),
    model_version_id=uuid.uuid4(),
    model_version=3,
    base_id="tiny",
    prompt="a harbour at dusk",
    negative_prompt="",
    width=64,
    height=64,
    frames=9,
    steps=4,
    guidance=1.0,
    seed=7,
    adapter_strength=1.0,
    attempt=1,
)


@pytest.fixture(scope="module")
def video() -> bytes:
    return encode_mp4(torch.linspace(0, 1, 9 * 64 * 64 * 3).reshape(9, 64, 64, 3))


def _frames(mp4: bytes) -> np.ndarray:
    with av.open(io.BytesIO(mp4)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_a_signed_video_names_its_model_and_is_trusted_under_the_local_ca(
    tmp_path: Path, video: bytes
) -> None:
    credentials = ContentCredentials.from_settings(Settings(data_dir=tmp_path))
    signed = credentials.sign_mp4(video, GENERATION)

    ca = (tmp_path / "provenance" / CA_FILE).read_bytes()
    read = read_credentials(signed, trust_anchor=ca)
    assert read.state == "Trusted"
    (created,) = read.assertion("c2pa.actions")["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert read.assertion(GENERATION_ASSERTION) == {
        "generation_id": str(GENERATION.id),
        "tenant_id": str(GENERATION.tenant_id),
        "model_id": str(GENERATION.model_id),
        "model_version_id": str(GENERATION.model_version_id),
        "model_version": 3,
        "base": "tiny",
    }
    # The manifest rides beside the pictures: the video plays as it did.
    assert np.array_equal(_frames(signed), _frames(video))
    # A verifier without the CA sees intact credentials from a signer it does not know.
    assert read_credentials(signed).state == "Valid"


def test_a_video_altered_after_signing_fails_validation(tmp_path: Path, video: bytes) -> None:
    signed = bytearray(
        ContentCredentials.from_settings(Settings(data_dir=tmp_path)).sign_mp4(video, GENERATION)
    )
    mdat = signed.rfind(b"mdat")  # the coded pictures, which the manifest's hash covers
    signed[mdat + 64] ^= 0xFF
    ca = (tmp_path / "provenance" / CA_FILE).read_bytes()
    assert read_credentials(bytes(signed), trust_anchor=ca).state == "Invalid"


def test_the_local_ca_is_made_once_even_by_racing_processes(tmp_path: Path) -> None:
    folder = tmp_path / "provenance"
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: local_authority(folder), range(8)))
    assert made == [folder] * 8
    chain = (folder / CHAIN_FILE).read_bytes()
    assert chain.count(b"BEGIN CERTIFICATE") == 2  # the leaf, then the CA that issued it
    assert chain.endswith((folder / CA_FILE).read_bytes())
    assert (folder / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["provenance"]  # nothing left aside
    local_authority(folder)
    assert (folder / CHAIN_FILE).read_bytes() == chain


def test_a_deployments_own_certificate_signs(tmp_path: Path, video: bytes) -> None:
    issued = local_authority(tmp_path / "issued")  # standing in for a CA the deployment uses
    settings = Settings(
        data_dir=tmp_path / "data",
        provenance=ProvenanceSettings(
            certificate_file=issued / CHAIN_FILE, private_key_file=issued / KEY_FILE
        ),
    )
    signed = ContentCredentials.from_settings(settings).sign_mp4(video, GENERATION)
    assert read_credentials(signed, trust_anchor=(issued / CA_FILE).read_bytes()).state == "Trusted"
    assert not (tmp_path / "data" / "provenance").exists()


def test_an_unusable_key_is_refused_when_the_worker_starts(tmp_path: Path) -> None:
    issued = local_authority(tmp_path / "issued")
    with pytest.raises(ProvenanceError, match="unusable"):
        ContentCredentials((issued / CHAIN_FILE).read_bytes(), b"-----BEGIN PRIVATE KEY-----\nnope\n")
