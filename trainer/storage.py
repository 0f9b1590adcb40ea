"""Where a run reads footage and writes its cache, checkpoints, validation clips and export.

The service hands in its ``ObjectStorage`` with tenant-scoped prefixes from ``TenantKeys``;
the CLI wraps a plain output folder in ``LocalStorage``. The trainer never builds a key
outside these prefixes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID

from core.storage.base import ObjectNotFoundError, ObjectStorage
from core.storage.keys import TenantKeys
from core.storage.local import LocalStorage


class AssetSource(Protocol):
    """Anything that can lend a seekable local file for a footage key (``ObjectStorage`` can)."""

    def local_path(self, key: str) -> AbstractContextManager[Path]: ...


class FolderSource:
    """A read-only folder of clips; keys are paths relative to it. Writes nothing into it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise ObjectNotFoundError(key)
        yield path


@dataclass(frozen=True)
class RunStorage:
    storage: ObjectStorage
    cache_prefix: str
    checkpoint_prefix: str
    export_prefix: str
    validation_prefix: str

    @classmethod
    def for_tenant(
        cls,
        storage: ObjectStorage,
        keys: TenantKeys,
        *,
        dataset_version_id: UUID,
        job_id: UUID,
        model_version_id: UUID,
    ) -> RunStorage:
        return cls(
            storage=storage,
            cache_prefix=keys.cache(dataset_version_id),
            checkpoint_prefix=keys.checkpoints(job_id),
            export_prefix=keys.adapter(model_version_id),
            validation_prefix=keys.samples(job_id),
        )

    @classmethod
    def local(cls, folder: Path) -> RunStorage:
        """The CLI's layout: ``cache/``, ``checkpoints/``, ``validation/`` and ``adapter/`` in one folder."""
        return cls(
            storage=LocalStorage(folder),
            cache_prefix="cache/",
            checkpoint_prefix="checkpoints/",
            export_prefix="adapter/",
            validation_prefix="validation/",
        )
