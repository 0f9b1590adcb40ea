"""The Rushes Python SDK.

import rushes

client = rushes.Client()  # RUSHES_API_KEY, RUSHES_BASE_URL
asset = client.assets.upload("clip.mp4", rights="owned")
"""

from rushes import types, webhooks
from rushes._base import NOT_GIVEN
from rushes._client import AsyncClient, Client
from rushes._errors import (
    AdapterDigestError,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DuplicateAssetError,
    FineTuneWaitTimeout,
    GenerationNotSucceededError,
    GenerationWaitTimeout,
    InternalServerError,
    NotFoundError,
    PagingError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RushesError,
    UnprocessableEntityError,
    UploadCheckTimeout,
    WaitTimeout,
)
from rushes._pagination import AsyncPager, SyncPager
from rushes._retry import RetryPolicy
from rushes._session import Session, log_in, sign_up
from rushes._version import __version__

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AdapterDigestError",
    "AsyncClient",
    "AsyncPager",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "DuplicateAssetError",
    "FineTuneWaitTimeout",
    "GenerationNotSucceededError",
    "GenerationWaitTimeout",
    "InternalServerError",
    "NotFoundError",
    "PagingError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RetryPolicy",
    "RushesError",
    "Session",
    "SyncPager",
    "UnprocessableEntityError",
    "UploadCheckTimeout",
    "WaitTimeout",
    "__version__",
    "log_in",
    "sign_up",
    "types",
    "webhooks",
]
