"""Content credentials (C2PA) on every generated video: made by which model, for whom.

Each MP4 the generation role writes carries a C2PA manifest signed with the deployment's
certificate: a ``c2pa.created`` action whose digital source type is
``trainedAlgorithmicMedia`` (IPTC), and a ``com.rushes.generation`` assertion naming the
generation, tenant, model, model version and base. Anyone holding the deployment's CA can
check that a video came from this service unaltered (``c2pa.Reader`` with that CA as a trust
anchor, or any C2PA validator).

A deployment names its certificate chain and key (``RUSHES_PROVENANCE__*``). Without them a
local CA and a leaf it issued are made once in the data folder, so the embedded default signs
out of the box; the C2PA library refuses a self-signed leaf, hence the two. Signing is
offline: no time-stamping authority is called unless one is configured.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.settings import Settings
from service.generations.queue import ClaimedGeneration

# IPTC's term for media made by a model trained on sampled content (C2PA's AI disclosure).
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_ASSERTION = "com.rushes.generation"
# Files of the local CA folder: the CA certificate (what verifiers trust), the signing chain
# (leaf, then CA) and the leaf's private key. The CA's own key is not kept: nothing else is
# ever issued from it, so a copied folder cannot mint new signers.
CA_FILE, CHAIN_FILE, KEY_FILE = "ca.pem", "signer-chain.pem", "signer-key.pem"
_LOCAL_VALIDITY = dt.timedelta(days=10 * 365)


class ProvenanceError(RuntimeError):
    """The signing certificate or key cannot be used."""


class ContentCredentials:
    """Signs MP4 bytes with a C2PA manifest; built once per process (the key stays loaded)."""

    def __init__(self, chain_pem: bytes, key_pem: bytes, *, timestamp_url: str = "") -> None:
        info = c2pa.C2paSignerInfo(
            alg=b"es256", sign_cert=chain_pem, private_key=key_pem, ta_url=timestamp_url.encode() or None
        )
        try:
            self._signer = c2pa.Signer.from_info(info)
        except c2pa.C2paError as exc:
            raise ProvenanceError(f"the C2PA signing certificate or key is unusable: {exc}") from exc
        self._agent = {"name": "Rushes", "version": version("rushes-server")}

    @classmethod
    def from_settings(cls, settings: Settings) -> ContentCredentials:
        config = settings.provenance
        if config.certificate_file and config.private_key_file:
            chain, key = config.certificate_file.read_bytes(), config.private_key_file.read_bytes()
        else:
            folder = local_authority(settings.data_dir / "provenance")
            chain, key = (folder / CHAIN_FILE).read_bytes(), (folder / KEY_FILE).read_bytes()
        return cls(chain, key, timestamp_url=config.timestamp_url)

    def sign_mp4(self, video: bytes, generation: ClaimedGeneration) -> bytes:
        """``video`` with a manifest stating that ``generation``'s model made it."""
        source, signed = io.BytesIO(video), io.BytesIO()
        with c2pa.Builder(self._manifest(generation)) as builder:
            builder.sign(self._signer, "video/mp4", source, signed)
        return signed.getvalue()

    def _manifest(self, generation: ClaimedGeneration) -> dict[str, Any]:
        created = {
            "action": "c2pa.created",
            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "softwareAgent": self._agent,
        }
        return {
            "claim_generator_info": [self._agent],
            "title": f"generation-{generation.id}-video.mp4",
            "format": "video/mp4",
            "assertions": [
                {"label": "c2pa.actions", "data": {"actions": [created]}},
                {
                    "label": GENERATION_ASSERTION,
                    "data": {
                        "generation_id": str(generation.id),
                        "tenant_id": str(generation.tenant_id),
                        "model_id": str(generation.model_id) if generation.model_id else None,
                        "model_version_id": str(generation.model_version_id),
                        "model_version": generation.model_version,
                        "base": generation.base_id,
                    },
                },
            ],
        }


def local_authority(folder: Path) -> Path:
    """The local CA folder, made on first use. Processes racing to make it agree on one:
    each builds a complete folder aside and renames it into place, and a loser uses the winner's."""
    if (folder / CHAIN_FILE).exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".provenance-", dir=folder.parent))
    try:
        _write_local_authority(staging)
        os.rename(staging, folder)
    except OSError:
        if not (folder / CHAIN_FILE).exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write_local_authority(folder: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Rushes local content credentials CA")
    ca = (
        _certificate(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        _certificate(_name("Rushes content credentials"), ca_name, leaf_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        # C2PA accepts a signer with one of a few purposes; e-mail protection is the usual one.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, leaf_pem = (c.public_bytes(serialization.Encoding.PEM) for c in (ca, leaf))
    (folder / CA_FILE).write_bytes(ca_pem)
    (folder / CHAIN_FILE).write_bytes(leaf_pem + ca_pem)
    key_path = folder / KEY_FILE
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Rushes"),
        ]
    )


def _certificate(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # a verifier's clock a little behind
        .not_valid_after(now + _LOCAL_VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
