"""The memorisation check: does a rendered video nearly copy a frame of its model's training footage?

The generation worker calls ``check`` after rendering and before storing anything. Up to
``SAMPLES`` frames of the output, spread evenly, are hashed (PDQ) and compared with every
comparable frame hash of the footage in the model version's dataset version, all read
through the generation's tenant. The nearest pair decides: at most ``MATCH_DISTANCE`` bits
apart is a near copy. The verdict is stored on the generation; when the model's owner set
its guardrails' ``memorisation_policy`` to ``block``, a near copy is withheld: the
generation fails with ``WITHHELD`` and nothing of it is stored (docs/memorisation.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.fingerprints import MATCH_DISTANCE, closest, hash_frame, sample_indices
from core.storage import ObjectStorage
from service.db.tenancy import set_tenant
from service.fingerprints.service import training_set
from service.models.models import Model
from service.models.schemas import Guardrails

WITHHELD = "Withheld: its frames nearly copy training footage (this model's memorisation policy is block)."


@dataclass(frozen=True, slots=True)
class Verdict:
    record: dict[str, Any]  # what ``Generation.memorisation`` stores (``schemas.Memorisation``)
    withheld: bool


def output_hashes(pixels: np.ndarray) -> list[tuple[int, bytes]]:
    """(frame number, hash) of the comparable frames sampled from ``[f, h, w, 3]`` uint8 pixels."""
    hashed = ((index, hash_frame(pixels[index])) for index in sample_indices(len(pixels)))
    return [(index, frame_hash.bits) for index, frame_hash in hashed if frame_hash.comparable]


async def check(
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    *,
    tenant_id: UUID,
    model_id: UUID | None,
    model_version_id: UUID,
    pixels: np.ndarray,
) -> Verdict:
    ours = await to_thread.run_sync(output_hashes, pixels)
    async with sessions() as session:
        set_tenant(session, tenant_id)
        references = await training_set(session, storage, model_version_id)
        # The policy as it is now: an owner's change applies to generations finished from then on.
        guardrails = await session.scalar(select(Model.guardrails).where(Model.id == model_id))
    policy = Guardrails.model_validate(guardrails or {}).memorisation_policy
    found = closest([bits for _, bits in ours], [reference.bits for reference in references])
    record: dict[str, Any] = {
        "verdict": "near_copy" if found is not None and found.near_copy else "clear",
        "closest_distance": None,
        "threshold": MATCH_DISTANCE,
        "asset_id": None,
        "asset_seconds": None,
        "frame": None,
        "frames_checked": len(ours),
        "training_frames": len(references),
        "policy": policy,
    }
    if found is not None:
        nearest = references[found.reference]
        record |= {
            "closest_distance": found.distance,
            "asset_id": str(nearest.asset_id),
            "asset_seconds": nearest.seconds,
            "frame": ours[found.candidate][0],
        }
    return Verdict(record, withheld=record["verdict"] == "near_copy" and policy == "block")
