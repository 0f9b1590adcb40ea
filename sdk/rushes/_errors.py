"""One error hierarchy, built from the server's RFC 9457 problem details.

RushesError
├── APIError                      (anything that happened talking to the API)
│   ├── APIConnectionError        (no answer: DNS, refused, reset, ...)
│   │   └── APITimeoutError
│   └── APIStatusError            (an answer with a 4xx/5xx status)
│       ├── BadRequestError            400
│       ├── AuthenticationError        401
│       ├── QuotaExceededError         402, or a problem type ending in ``quota-exceeded``
│       ├── PermissionDeniedError      403
│       ├── NotFoundError              404
│       ├── ConflictError              409
│       │   └── DuplicateAssetError    (the library already holds the file: ``existing_asset_id``)
│       ├── PayloadTooLargeError       413
│       ├── UnprocessableEntityError   422
│       ├── RateLimitError             429
│       └── InternalServerError        5xx
├── WaitTimeout                   (``wait(..., timeout=)`` ran out first)
│   ├── FineTuneWaitTimeout
│   ├── GenerationWaitTimeout
│   └── UploadCheckTimeout        (a direct upload's checks outlasted ``check_timeout``)
├── AdapterDigestError            (a downloaded adapter failed its SHA-256 check)
├── GenerationNotSucceededError   (outputs asked of a generation that has none)
└── (configuration errors, e.g. no API key, are plain RushesError)
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from rushes._retry import parse_retry_after

if TYPE_CHECKING:
    from rushes.types import Generation

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DuplicateAssetError",
    "FineTuneWaitTimeout",
    "GenerationNotSucceededError",
    "GenerationWaitTimeout",
    "InternalServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RushesError",
    "UnprocessableEntityError",
    "UploadCheckTimeout",
    "WaitTimeout",
]

REQUEST_ID_HEADER = "x-request-id"


class RushesError(Exception):
    """Base class of every error the SDK raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIError(RushesError):
    """An error while calling the API; ``request`` is the request that failed."""

    def __init__(self, message: str, *, request: httpx.Request) -> None:
        super().__init__(message)
        self.request = request


class APIConnectionError(APIError):
    """The API could not be reached, or the connection broke before an answer came."""

    def __init__(
        self, message: str = "Could not connect to the Rushes API.", *, request: httpx.Request
    ) -> None:
        super().__init__(message, request=request)


class APITimeoutError(APIConnectionError):
    def __init__(
        self, message: str = "The request to the Rushes API timed out.", *, request: httpx.Request
    ) -> None:
        super().__init__(message, request=request)


class APIStatusError(APIError):
    """The API answered with an error status. ``body`` is the parsed problem-details document."""

    status_code: int

    def __init__(self, message: str, *, response: httpx.Response, body: Any) -> None:
        super().__init__(message, request=response.request)
        self.response = response
        self.status_code = response.status_code
        self.body = body
        problem = body if isinstance(body, dict) else {}
        self.request_id: str | None = response.headers.get(REQUEST_ID_HEADER) or problem.get("request_id")
        self.type: str | None = problem.get("type")
        self.title: str | None = problem.get("title")
        self.detail: str | None = problem.get("detail")

    def __str__(self) -> str:
        suffix = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.status_code} {self.message}{suffix}"


class BadRequestError(APIStatusError):
    status_code = 400


class AuthenticationError(APIStatusError):
    status_code = 401


class QuotaFigures:
    """What a quota refusal (402, 413, 429) says about the quota; each is None where it says nothing.

    ``quota`` names it (``gpu_seconds_per_month``, ``storage_bytes``, ``models``,
    ``generations_per_minute``, ``max_upload_bytes``, ...), ``limit`` is the plan's limit,
    ``used`` what is used now (or this month, or in the last minute) and ``resets_at`` when a
    monthly allowance starts again.
    """

    body: Any

    def _figure(self, name: str) -> Any:
        return self.body.get(name) if isinstance(self.body, dict) else None

    @property
    def quota(self) -> str | None:
        quota = self._figure("quota")
        return str(quota) if quota is not None else None

    @property
    def limit(self) -> int | None:
        limit = self._figure("limit")
        return int(limit) if isinstance(limit, int | float) else None

    @property
    def used(self) -> float | None:
        used = self._figure("used")
        return used if isinstance(used, int | float) else None

    @property
    def resets_at(self) -> datetime | None:
        resets_at = self._figure("resets_at")
        try:
            return datetime.fromisoformat(resets_at) if isinstance(resets_at, str) else None
        except ValueError:
            return None


class QuotaExceededError(QuotaFigures, APIStatusError):
    """402: an allowance of the plan is used up (``quota`` and the figures say which), or the
    tenant's payment is past due (``type`` ends in ``payment-required``; no figures). Never retried."""

    status_code = 402


class PermissionDeniedError(APIStatusError):
    status_code = 403


class NotFoundError(APIStatusError):
    status_code = 404


class ConflictError(APIStatusError):
    """409. For an upload completed too early, ``missing_parts`` lists the part numbers still missing."""

    status_code = 409

    @property
    def missing_parts(self) -> list[int]:
        parts = self.body.get("missing_parts") if isinstance(self.body, dict) else None
        return [int(p) for p in parts] if isinstance(parts, list) else []


class DuplicateAssetError(ConflictError):
    """409: the tenant's library already holds a file with the same sha256, so it was not
    stored again; ``existing_asset_id`` names that asset. Upload with ``allow_duplicate=True``
    to store it anyway."""

    @property
    def existing_asset_id(self) -> str | None:
        existing = self.body.get("existing_asset_id") if isinstance(self.body, dict) else None
        return str(existing) if existing else None


class PayloadTooLargeError(QuotaFigures, APIStatusError):
    """413: a body, or a file an upload declares, is too large (for the plan: ``quota`` is
    ``max_upload_bytes``, ``limit`` the largest size, ``used`` the size asked for)."""

    status_code = 413


class UnprocessableEntityError(APIStatusError):
    status_code = 422


class RateLimitError(QuotaFigures, APIStatusError):
    """429. ``retry_after`` is the server's hint in seconds: its ``Retry-After`` header, else
    the problem's ``retry_after``. For a rate quota, ``quota`` and the figures say which."""

    status_code = 429

    @property
    def retry_after(self) -> float | None:
        hinted = parse_retry_after(self.response.headers)
        if hinted is not None:
            return hinted
        in_body = self._figure("retry_after")
        return float(in_body) if isinstance(in_body, int | float) else None


class InternalServerError(APIStatusError):
    pass


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: QuotaExceededError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def _problem_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text or None


def is_quota_problem(body: Any) -> bool:
    return isinstance(body, dict) and str(body.get("type") or "").endswith("quota-exceeded")


def is_duplicate_problem(body: Any) -> bool:
    return isinstance(body, dict) and str(body.get("type") or "").endswith("/duplicate-asset")


def _field_errors(errors: Any) -> str:
    """Validation errors as ``key: message; ...`` (the first few), when the problem lists them."""
    if not isinstance(errors, list):
        return ""
    shown = [
        f"{e.get('key')}: {e.get('message')}" if e.get("key") else str(e.get("message"))
        for e in errors[:3]
        if isinstance(e, dict) and e.get("message")
    ]
    return "; ".join(shown)


def host_and_port(url: httpx.URL) -> str:
    """``host:port`` of a URL, the port spelled out even where the scheme implies it."""
    return f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"


def refused_key_message(api_key: str, url: httpx.URL) -> str:
    """What a 401 to a request with an API key means, naming the key by its public prefix only."""
    where = host_and_port(url)
    scheme, _, rest = api_key.partition("_")
    prefix, sep, secret = rest.partition("_")
    if scheme == "rsh" and prefix and sep and secret:
        refused = (
            f"The API key rsh_{prefix}_... was not accepted by {where}: it is unknown there, or was revoked."
        )
    else:
        refused = f"The API key was not accepted by {where}: it is not a Rushes API key (rsh_..._...)."
    return f"{refused} Check the key given (RUSHES_API_KEY), or make a new one with `rushes keys create`."


def _error_class(status: int, body: Any) -> type[APIStatusError]:
    """The one mapping from a status and its problem details to an exception class."""
    if is_quota_problem(body):
        return QuotaExceededError
    if status == 409 and is_duplicate_problem(body):
        return DuplicateAssetError
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, APIStatusError)


def status_error(response: httpx.Response, *, api_key: str | None = None) -> APIStatusError:
    """The exception for an error response.

    ``api_key`` is the key the request carried: a 401 then says that this key was refused.
    """
    body = _problem_body(response)
    cls = _error_class(response.status_code, body)
    if isinstance(body, dict):
        message = str(body.get("detail") or body.get("title") or response.reason_phrase)
        if field_errors := _field_errors(body.get("errors")):
            message = f"{message}: {field_errors}"
    else:
        message = response.reason_phrase or "Error"
    if response.status_code == 401 and api_key:
        message = refused_key_message(api_key, response.request.url)
    return cls(message, response=response, body=body)


def recorded_problem_error(problem: dict[str, Any], request: httpx.Request) -> APIStatusError:
    """A problem the server recorded rather than answered (a direct upload's ``failure``), as
    the error it raises when that problem is the answer itself; ``request`` is the one that
    read it."""
    status = problem.get("status")
    code = status if isinstance(status, int) and 400 <= status <= 599 else 500
    return status_error(httpx.Response(code, json=problem, request=request))


def storage_error(response: httpx.Response) -> APIStatusError:
    """Storage refused a part sent straight to it. Its answer is its own (S3's XML), not
    problem details, so the status alone picks the class."""
    where = host_and_port(response.request.url)
    message = f"Storage at {where} refused an upload part: {response.reason_phrase or 'error'}"
    return _error_class(response.status_code, None)(message, response=response, body=response.text or None)


def storage_transport_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    """No answer from storage to a part sent straight to it."""
    where = host_and_port(request.url)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"An upload part to storage at {where} timed out.", request=request)
    return APIConnectionError(f"Could not reach storage at {where}: {exc}", request=request)


class WaitTimeout(RushesError):
    """A ``wait(..., timeout=)`` ran out of time before what it followed finished."""


class FineTuneWaitTimeout(WaitTimeout):
    """``fine_tunes.wait(..., timeout=)`` ran out of time before the job finished."""


class GenerationWaitTimeout(WaitTimeout):
    """``generations.wait(..., timeout=)`` ran out of time before the generation finished."""


class UploadCheckTimeout(WaitTimeout):
    """The server's checks of a direct upload (sha256, media) outlasted ``check_timeout``.

    They go on: ``uploads.get(upload_id)`` tells when the upload is ``completed`` (its
    ``asset_id``) or ``failed`` (its ``failure``).
    """

    def __init__(self, message: str, *, upload_id: str) -> None:
        super().__init__(message)
        self.upload_id = upload_id


class GenerationNotSucceededError(RushesError):
    """An output was asked of a generation that has not succeeded (yet, or ever).

    ``generation`` is its state when the download was refused.
    """

    def __init__(self, generation: Generation) -> None:
        self.generation = generation
        self.status = generation.status
        if generation.status == "failed":
            reason = f": {generation.failure_reason}" if generation.failure_reason else ""
            message = f"Generation {generation.id} failed{reason}; it has no outputs."
        elif generation.status == "cancelled":
            message = f"Generation {generation.id} was cancelled; it has no outputs."
        else:
            message = (
                f"Generation {generation.id} is {generation.status}: it has no outputs until it "
                "succeeds (generations.wait() follows it until then)."
            )
        super().__init__(message)


class PagingError(RushesError):
    """A list's pages do not advance: the server answered the page just read again, so
    iterating on would never end."""


class AdapterDigestError(RushesError):
    """The downloaded adapter's SHA-256 is not the one the server announced; nothing was kept."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected, self.actual = expected, actual
