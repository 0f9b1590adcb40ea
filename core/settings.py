"""Typed settings, one group per subsystem, read from ``RUSHES_*`` environment variables.

Nested groups use a double underscore: ``RUSHES_DATABASE__URL``, ``RUSHES_STORAGE__BACKEND``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1 << 20
GiB = 1 << 30


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rushes"


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    debug: bool = False
    # ``serve`` applies migrations before it listens; off where a deployment migrates once
    # beforehand (the Helm chart's hook), so replicas starting together never race to migrate.
    migrate: bool = True
    # The largest JSON body any route accepts; upload parts have their own bound.
    max_json_body: int = 1 * MiB
    # Origins (``https://app.example.com``) whose pages may call the API from a browser (CORS),
    # with an API key: the web app's, where it is served from another origin. Empty (the
    # default): no cross-origin access at all, and preflights get no CORS headers.
    cors_origins: list[str] = []
    # Proxies whose ``X-Forwarded-For``/``-Proto`` are believed (uvicorn's
    # ``forwarded_allow_ips``: addresses, CIDRs, or ``*``). Sign-in throttling counts failures
    # per client address, so behind a proxy not listed here every client is the proxy.
    forwarded_allow_ips: str = "127.0.0.1"


class DatabaseSettings(BaseModel):
    """Empty ``url`` means the embedded SQLite file inside the data folder."""

    url: str = ""
    echo: bool = False
    pool_size: int = 10


class StorageSettings(BaseModel):
    backend: Literal["local", "s3"] = "local"
    # Empty ``path`` means ``storage/`` inside the data folder.
    path: Path | None = None
    s3_endpoint: str = ""
    s3_bucket: str = "rushes"
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_secure: bool = True
    s3_region: str | None = None
    s3_create_bucket: bool = False
    # The endpoint as clients reach it (``https://media.example.com``), for the URLs Rushes
    # signs (downloads, direct uploads) when the API reaches storage by another name (a
    # cluster-internal service); empty: ``s3_endpoint``. Signing is local arithmetic, so the
    # API never needs to reach this name itself.
    s3_public_url: str = ""

    @model_validator(mode="after")
    def _s3_needs_endpoint(self) -> StorageSettings:
        if self.backend == "s3" and not self.s3_endpoint:
            raise ValueError("RUSHES_STORAGE__S3_ENDPOINT is required when RUSHES_STORAGE__BACKEND=s3")
        return self


class UploadSettings(BaseModel):
    default_part_size: int = 16 * MiB
    # S3 refuses parts under 5 MiB except the last; our bound keeps one part's buffer small.
    min_part_size: int = 5 * MiB
    max_part_size: int = 64 * MiB
    max_file_size: int = 200 * 1024 * MiB
    session_ttl_seconds: int = 24 * 3600
    cleanup_interval_seconds: int = 300
    # On a backend that signs URLs (S3), clients that can PUT parts straight to storage get
    # signed part URLs: their bytes never cross the API, and the ``ingest`` worker role checks
    # the file once it is whole.
    direct: bool = True
    # How long a signed part URL stays valid; a client asks again for parts it has not sent.
    part_url_ttl_seconds: int = 900
    # How long a worker holds an upload it is checking before another may take it over.
    verify_lease_seconds: int = 1800
    # How often an idle ``ingest`` role looks for uploads to check.
    verify_poll_seconds: float = 1.0


class AuthSettings(BaseModel):
    allow_signup: bool = True
    session_ttl_seconds: int = 14 * 24 * 3600
    session_cookie: str = "rushes_session"
    # Secure cookies break plain-http localhost, the embedded default; production sets it.
    secure_cookies: bool = False


class JobSettings(BaseModel):
    # A worker that misses its lease this long loses the job to another worker.
    lease_seconds: float = 60.0
    # Leases a job may lose before it fails; set on each job when it is created.
    max_attempts: int = 3
    # Recent GPU time halves every this many seconds when choosing whose job runs next.
    fair_share_half_life_seconds: float = 3600.0


class GenerationSettings(BaseModel):
    """Video generation: the platform's limits on a request, the queue, downloads, the worker's batching."""

    # The largest request any model accepts; a model's owner may set lower limits (guardrails).
    max_width: int = 1280
    max_height: int = 1280
    max_frames: int = 129
    max_steps: int = 100
    # A worker that misses its lease this long loses its batch to another worker.
    lease_seconds: float = 60.0
    # Leases a generation may lose before it fails; set on each generation when it is created.
    max_attempts: int = 2
    # How long a signed download URL (S3 storage) stays valid.
    signed_url_seconds: int = 300
    # Compatible generations a worker renders together in one batch.
    max_batch: int = 4
    # Adapters a worker keeps loaded on the accelerator, and in host memory behind that.
    device_cache_bytes: int = 4 * GiB
    host_cache_bytes: int = 4 * GiB
    # The longer side of the animated preview, in pixels.
    preview_max_side: int = 256


class BasesSettings(BaseModel):
    """The bases offered for fine-tuning: ``RUSHES_BASES__FOLDERS='{"wan2.1-t2v-1.3b": "/models/..."}'``."""

    # Base id -> a local diffusers folder (Wan 2.1 text-to-video layout).
    folders: dict[str, Path] = {}
    # The built-in tiny base: the embedded default and the tests train on it.
    tiny: bool = True


class WorkerSettings(BaseModel):
    """The embedded worker that ``serve`` starts, and the defaults of ``rushes-server worker``."""

    embedded: bool = True
    # None: CUDA when present, else CPU.
    device: str | None = None
    # Accelerator memory the worker offers to jobs; 0 means what the device reports.
    memory_bytes: int = 0
    max_jobs: int = 1
    poll_seconds: float = 2.0
    # Heartbeats come from the training loop, at most this often.
    heartbeat_seconds: float = 5.0
    # A name this worker keeps across restarts (empty: a new one each start). A worker that
    # starts under a name ends the leases its previous run held at once, instead of waiting
    # for them to run out; no two live workers may share one. ``serve`` names its embedded
    # worker after itself.
    id: str = ""
    # After a fine-tune, the new version's look is measured against the base's and the
    # footage's (docs/trainer.md, "Look metrics"): this many renders with each, at most this
    # long a side and this many frames, and as many footage windows. 0 renders: not measured.
    look_renders: int = Field(default=4, ge=0, le=16)
    look_max_side: int = Field(default=256, ge=16)
    look_max_frames: int = Field(default=9, ge=1)


# ``RUSHES_WEBHOOKS__*``: signing, what may be called, and the retry schedule.
class WebhookSettings(BaseModel):
    # Every endpoint's signing secret is derived from this key, so none is stored. Empty:
    # a key is generated once into ``webhook-signing.key`` in the data folder; replicas that
    # do not share that folder must all be given the same key. Changing it changes every
    # endpoint's secret.
    signing_key: SecretStr = SecretStr("")
    # Local development and tests only: lets endpoints be plain http on loopback addresses.
    allow_http_loopback: bool = False
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    # Attempts per delivery, the first included; then it fails until redelivered.
    max_attempts: int = Field(default=10, ge=1)
    # The wait before retry n is retry_base * 2**(n-1), capped, then jittered down by up to half.
    retry_base_seconds: float = Field(default=60.0, ge=0)
    retry_max_seconds: float = Field(default=6 * 3600.0, ge=0)
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    # How far back each round looks for events without deliveries. Events are found by
    # their time, not a cursor, so one committed late (a slow transaction, another
    # process's clock) is still delivered if it lands within this window.
    lookback_seconds: float = Field(default=900.0, gt=0)
    # Deliveries one dispatcher sends at once.
    concurrency: int = Field(default=32, ge=1)
    # After a rotation, deliveries carry the previous secret's signature too for this long,
    # so receivers can switch secrets without rejecting events.
    rotation_overlap_seconds: float = Field(default=24 * 3600.0, ge=0)
    max_endpoints_per_tenant: int = Field(default=20, ge=1)

    @field_validator("signing_key")
    @classmethod
    def _long_enough(cls, key: SecretStr) -> SecretStr:
        if 0 < len(key.get_secret_value()) < 32:
            raise ValueError("the webhook signing key must be at least 32 characters (or empty)")
        return key


class MetricsSettings(BaseModel):
    """Prometheus metrics (``RUSHES_METRICS__*``): the API's ``/metrics`` and each worker's endpoint.

    Off by default: the numbers (queue depths, request rates by route) are operational
    data, not for anyone who can reach the API.
    """

    # Serve ``GET /metrics`` on the API's port.
    enabled: bool = False
    # The bearer token ``/metrics`` asks for (``Authorization: Bearer <token>``). Empty: it asks
    # for none, which suits only a port no one else can reach; the Helm chart always sets one.
    token: SecretStr = SecretStr("")
    # Seconds an API process reuses the database figures (queue depths, ages) between
    # scrapes, so that however many scrapers call it, it queries at most this often.
    cache_seconds: float = Field(default=5.0, ge=0)
    # A worker serves its metrics over plain HTTP on this port, apart from the API (0: it
    # serves none). No token: keep the port inside the cluster (the chart's NetworkPolicy).
    worker_port: int = Field(default=0, ge=0, le=65535)
    # The address it listens on: loopback, unless the port must be reached from elsewhere
    # (the Helm chart sets ``0.0.0.0`` in worker pods).
    worker_host: str = "127.0.0.1"


class BillingSettings(BaseModel):
    """Stripe billing (``RUSHES_BILLING__*``, ``docs/billing.md``): off until an API key is set."""

    stripe_api_key: SecretStr = SecretStr("")
    # The signing secret (``whsec_...``) of the Stripe webhook endpoint that calls this API.
    webhook_secret: SecretStr = SecretStr("")
    # Where the Stripe client sends its requests; empty: Stripe itself. For tests and stand-ins.
    api_base: str = ""
    # The meter event name each ledger charge is sent as: one Stripe meter (sum) per name.
    meter_events: dict[str, str] = {
        "fine_tune_gpu_seconds": "rushes_fine_tune_gpu_seconds",
        "generation_gpu_seconds": "rushes_generation_gpu_seconds",
        "output_bytes": "rushes_output_bytes",
    }
    # Where the Customer Portal sends the user back; empty: the portal's configured default.
    portal_return_url: str = ""
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    # Ledger entries the billing role sends per round, oldest first.
    send_batch: int = Field(default=100, ge=1)
    poll_interval_seconds: float = Field(default=5.0, gt=0)
    # After a round with failures the next waits retry_base * 2**(n-1), capped, jittered down by half.
    retry_base_seconds: float = Field(default=5.0, ge=0)
    retry_max_seconds: float = Field(default=600.0, ge=0)

    @property
    def enabled(self) -> bool:
        return bool(self.stripe_api_key.get_secret_value())


class ProvenanceSettings(BaseModel):
    """C2PA content credentials on generated videos (``RUSHES_PROVENANCE__*``, ``docs/provenance.md``)."""

    # The signing certificate chain (PEM: the leaf first, then the CAs that issued it) and
    # its private key. Unset: a local CA and a leaf it issued are made once in
    # ``provenance/`` in the data folder; workers that do not share it must be given files.
    certificate_file: Path | None = None
    private_key_file: Path | None = None
    # An RFC 3161 time-stamping authority to countersign with; empty: signed offline.
    timestamp_url: str = ""


class LogSettings(BaseModel):
    level: str = "INFO"
    json_format: bool = True


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUSHES_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    uploads: UploadSettings = UploadSettings()
    auth: AuthSettings = AuthSettings()
    jobs: JobSettings = JobSettings()
    generations: GenerationSettings = GenerationSettings()
    bases: BasesSettings = BasesSettings()
    worker: WorkerSettings = WorkerSettings()
    webhooks: WebhookSettings = WebhookSettings()
    metrics: MetricsSettings = MetricsSettings()
    billing: BillingSettings = BillingSettings()
    provenance: ProvenanceSettings = ProvenanceSettings()
    log: LogSettings = LogSettings()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'rushes.db'}"

    @property
    def storage_path(self) -> Path:
        return self.storage.path or self.data_dir / "storage"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
