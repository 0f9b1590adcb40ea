"""Object storage: one interface, a local-folder backend and an S3 backend."""

from core.settings import Settings
from core.storage.base import (
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStorage,
    PartWriter,
    PendingMultipart,
    SignedUploads,
    StoredPart,
    content_disposition,
)
from core.storage.keys import TenantKeys


def storage_from_settings(settings: Settings) -> ObjectStorage:
    if settings.storage.backend == "s3":
        from core.storage.s3 import S3Storage

        return S3Storage(
            endpoint=settings.storage.s3_endpoint,
            bucket=settings.storage.s3_bucket,
            access_key=settings.storage.s3_access_key,
            secret_key=settings.storage.s3_secret_key.get_secret_value(),
            secure=settings.storage.s3_secure,
            region=settings.storage.s3_region,
            create_bucket=settings.storage.s3_create_bucket,
            public_url=settings.storage.s3_public_url,
        )
    from core.storage.local import LocalStorage

    return LocalStorage(settings.storage_path)


__all__ = [
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStorage",
    "PartWriter",
    "PendingMultipart",
    "SignedUploads",
    "StoredPart",
    "TenantKeys",
    "content_disposition",
    "storage_from_settings",
]
