"""Response models. Ids are strings; timestamps are timezone-aware datetimes; days are dates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, Literal, TypedDict, TypeVar

from rushes._models import Model as _Model

T = TypeVar("T")

__all__ = [
    "ApiKey",
    "ApiKeyWithSecret",
    "Asset",
    "Base",
    "Billing",
    "BillingPortal",
    "Dataset",
    "DatasetItem",
    "DatasetVersion",
    "FineTune",
    "FineTuneUsage",
    "Generation",
    "GenerationEvent",
    "GenerationUsage",
    "Guardrails",
    "Invitation",
    "JobEvent",
    "LedgerEntry",
    "Me",
    "Member",
    "Membership",
    "Memorisation",
    "Model",
    "ModelVersion",
    "Page",
    "PartUrl",
    "PartUrls",
    "Plan",
    "PlanLimits",
    "QuotaUse",
    "Quotas",
    "Rights",
    "StorageUsage",
    "Tenant",
    "TenantBilling",
    "TenantCompute",
    "TenantSummary",
    "Upload",
    "UploadPart",
    "Usage",
    "UsageDay",
    "User",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookWithSecret",
]

#: ``"owned"``, or ``{"kind": "licensed", "licence_ref": "..."}`` (``{"kind": "owned"}`` works too).
Rights = Literal["owned"] | dict[str, str]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list: ``items`` plus where it sits in the whole."""

    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant(_Model):
    id: str
    name: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership(_Model):
    tenant: Tenant
    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Me(_Model):
    user_id: str
    email: str
    is_platform_admin: bool
    tenant: Tenant
    role: str
    memberships: list[Membership] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Member(_Model):
    user_id: str
    email: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Invitation(_Model):
    """An invitation to the tenant; ``token`` and ``link`` come only in the answer that makes it."""

    id: str
    email: str
    role: str
    status: str
    invited_by: str
    expires_at: datetime
    created_at: datetime
    token: str | None = None
    link: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey(_Model):
    id: str
    name: str
    prefix: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyWithSecret(ApiKey):
    """A newly created key. ``key`` is the secret, shown only this once."""

    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadPart(_Model):
    part_number: int
    size: int
    #: Checked by the API on receipt; None for a part sent straight to storage.
    sha256: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PartUrl(_Model):
    """Where to ``PUT`` one part's exact ``size`` bytes, with no credentials."""

    part_number: int
    size: int
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PartUrls(_Model):
    """Signed URLs for a ``direct`` upload's parts; ask again for those not sent by ``expires_at``."""

    parts: list[PartUrl]
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload(_Model):
    """An upload session. ``transfer`` is ``"direct"`` when its parts go straight to storage
    (:meth:`~rushes.resources.Uploads.part_urls`), ``"api"`` when through the API. ``status``:
    ``open``, ``completing``, ``verifying`` (a direct upload being checked), ``completed``
    (``asset_id`` is set) or ``failed`` (``failure`` is the problem details of why)."""

    id: str
    filename: str
    size: int
    sha256: str
    content_type: str
    rights: str
    part_size: int
    part_count: int
    status: str
    expires_at: datetime
    licence_ref: str | None = None
    asset_id: str | None = None
    #: Servers from before direct uploads send none: their parts all go through the API.
    transfer: str = "api"
    failure: dict[str, Any] | None = None
    parts: list[UploadPart] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset(_Model):
    id: str
    filename: str
    size: int
    sha256: str
    content_type: str
    kind: str
    rights: str
    attested_by: str
    attested_at: datetime
    created_at: datetime
    licence_ref: str | None = None
    media: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset(_Model):
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetItem(_Model):
    asset_id: str
    caption: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetVersion(_Model):
    id: str
    dataset_id: str
    number: int
    locked: bool
    created_at: datetime
    trigger_word: str | None = None
    locked_at: datetime | None = None
    items: list[DatasetItem] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantSummary(_Model):
    id: str
    name: str
    status: str
    created_at: datetime
    members: int
    assets: int
    storage_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantCompute(_Model):
    """A tenant's share of the GPUs (admins): its fair-share ``weight``, a cap on its work
    running at once (None: no cap; 0 holds it) and its decayed recent GPU seconds."""

    tenant_id: str
    weight: float
    concurrency_cap: int | None
    recent_gpu_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class User(_Model):
    id: str
    email: str
    is_platform_admin: bool
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhook(_Model):
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    secret_version: int
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookWithSecret(Webhook):
    """A new or rotated endpoint. ``secret`` verifies its deliveries and is shown only this once."""

    secret: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookAttempt(_Model):
    number: int
    url: str
    duration_ms: int
    created_at: datetime
    status_code: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookDelivery(_Model):
    """One event sent (or being sent) to one endpoint; ``attempt_log`` holds every try."""

    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    last_duration_ms: int | None = None
    delivered_at: datetime | None = None
    attempt_log: list[WebhookAttempt] = field(default_factory=list)


#: Statuses (of fine-tunes and generations) after which nothing more happens (unless a job is resumed).
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Base(_Model):
    """A base model this deployment can fine-tune (``parameters``: its size)."""

    id: str
    family: str
    parameters: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FineTune(_Model):
    """A fine-tune job. ``status`` is ``queued``, ``running``, ``succeeded``, ``failed`` or ``cancelled``."""

    id: str
    status: str
    dataset_version_id: str
    base_id: str
    step: int
    total_steps: int
    attempts: int
    max_attempts: int
    cancel_requested: bool
    gpu_seconds: float
    #: Of ``gpu_seconds``, those not charged: every second of a run that failed by the
    #: platform's fault (an internal error, running out of memory) is waived.
    waived_gpu_seconds: float
    estimated_bytes: int
    queued_at: datetime
    created_at: datetime
    model_id: str | None = None
    model_version: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvent(_Model):
    """One thing that happened to a job; ``seq`` counts from 1 within the job."""

    id: str
    seq: int
    type: str
    created_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


#: A generation's events have the shape of a fine-tune's: ``queued``, ``started``, ``progress``
#: (``step``, ``total_steps``, ``eta_seconds``: the worker's estimate, or None), ``cancel_requested``,
#: ``requeued``, ``succeeded`` (``outputs``, ``gpu_seconds``), ``failed`` (``reason``) and ``cancelled``.
GenerationEvent = JobEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class Guardrails(_Model):
    """What generation requests on a model may ask for, set by the tenant's owners.

    A prompt holding a blocked term (any case, as a whole word or phrase) is refused, and so
    is a request over a limit; a limit of None leaves the platform's own.
    """

    blocked_terms: list[str] = field(default_factory=list)
    max_width: int | None = None
    max_height: int | None = None
    max_frames: int | None = None
    max_steps: int | None = None
    #: What happens to a generation whose frames nearly copy the model's training footage:
    #: ``record`` keeps it and records the verdict, ``block`` withholds it.
    memorisation_policy: str = "record"


@dataclass(frozen=True, slots=True, kw_only=True)
class Model(_Model):
    """A fine-tuned model: a name and its numbered versions (one per successful fine-tune)."""

    id: str
    name: str
    description: str
    base_id: str
    version_count: int
    created_at: datetime
    updated_at: datetime
    guardrails: Guardrails = field(default_factory=Guardrails)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersion(_Model):
    id: str
    model_id: str
    number: int
    job_id: str
    dataset_version_id: str
    base_id: str
    adapter_sha256: str
    adapter_bytes: int
    steps: int
    created_at: datetime
    trigger_word: str | None = None
    final_loss: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    #: What the fine-tune did to the look (base → this version → footage, and ``moved``);
    #: None when not measured. See the API's ``VersionLook``.
    look: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Memorisation(_Model):
    """Whether a generation's output nearly copies a frame of the model's training footage.

    The nearest pair of sampled frames, PDQ hashes ``closest_distance`` bits apart of 256, is a
    near copy (``verdict`` ``near_copy``, else ``clear``) at ``threshold`` or less. ``frame`` is
    the output's frame, ``asset_id`` and ``asset_seconds`` the footage's; all None when nothing
    was comparable. ``policy`` is the model's at the time: with ``block`` a near copy was withheld.
    """

    verdict: str
    threshold: int
    frames_checked: int
    training_frames: int
    policy: str
    closest_distance: int | None = None
    asset_id: str | None = None
    asset_seconds: float | None = None
    frame: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Generation(_Model):
    """A video rendered from a model version. ``status`` is as for fine-tunes.

    Every setting is resolved when the generation is made (the base's defaults, a random
    ``seed``), so it can be rendered again. ``step`` counts denoising steps of ``steps``;
    ``outputs`` maps each output's name (``video.mp4``, ``poster.jpg``, ``preview.webp``) to its
    API path once the generation succeeded.
    """

    id: str
    status: str
    base_id: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    frames: int
    steps: int
    guidance: float
    seed: int
    adapter_strength: float
    step: int
    attempts: int
    max_attempts: int
    cancel_requested: bool
    gpu_seconds: float
    queued_at: datetime
    created_at: datetime
    model_id: str | None = None
    model_version_id: str | None = None
    #: The model version number it renders with; None once that version is deleted.
    version: int | None = None
    failure_reason: str | None = None
    output_bytes: int | None = None
    #: The memorisation check's verdict once rendered; None before, and for generations made
    #: before the check existed.
    memorisation: Memorisation | None = None
    outputs: dict[str, str] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def total_steps(self) -> int:
        """The denoising steps it takes (``steps``), as its progress events call them."""
        return self.steps


@dataclass(frozen=True, slots=True, kw_only=True)
class FineTuneUsage(_Model):
    """Fine-tunes attributed to a period, those that succeeded, and their GPU seconds."""

    count: int
    succeeded: int
    gpu_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationUsage(_Model):
    """Generations attributed to a period, those that succeeded, their GPU seconds and output size."""

    count: int
    succeeded: int
    gpu_seconds: float
    output_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageUsage(_Model):
    """What a tenant stores now: footage, trained adapters and generation outputs, in bytes."""

    footage_bytes: int
    adapter_bytes: int
    output_bytes: int
    total_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageDay(_Model):
    """One UTC day of a period that had work attributed to it."""

    date: date
    fine_tune_gpu_seconds: float
    generation_gpu_seconds: float
    generations: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage(_Model):
    """A tenant's usage over the UTC days ``since`` to ``until`` (both included).

    Each fine-tune and generation counts on the UTC day it finished; work still under way counts
    on today, with its GPU seconds so far. ``storage`` is what the tenant stores now, whatever
    the period; ``days`` lists the days with work attributed to them, oldest first.
    """

    since: date
    until: date
    fine_tunes: FineTuneUsage
    generations: GenerationUsage
    storage: StorageUsage
    days: list[UsageDay] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry(_Model):
    """One charge (positive ``quantity``) or credit (negative) on the usage ledger.

    ``charge`` says what is charged, its unit in the name: ``fine_tune_gpu_seconds``,
    ``generation_gpu_seconds`` or ``output_bytes``. ``occurred_at`` is when the work was done
    (the day the charge counts on); ``id`` is unique, and billing's identifier for it.
    """

    id: str
    charge: str
    quantity: float
    occurred_at: datetime
    work_id: str | None = None
    attempt: int | None = None


class PlanLimits(TypedDict, total=False):
    """A plan's limits, or a tenant's overrides of them, by quota name; None is unlimited."""

    gpu_seconds_per_month: int | None
    storage_bytes: int | None
    models: int | None
    concurrent_fine_tunes: int | None
    concurrent_generations: int | None
    generations_per_minute: int | None
    max_upload_bytes: int | None


#: Every quota's name, in the order the API lists them.
QUOTA_NAMES: tuple[str, ...] = tuple(PlanLimits.__annotations__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan(_Model):
    """The limits a tenant buys; a limit of None is unlimited. ``is_default``: the plan of every
    tenant without one of its own."""

    id: str
    name: str
    is_default: bool
    created_at: datetime
    gpu_seconds_per_month: int | None = None
    storage_bytes: int | None = None
    models: int | None = None
    concurrent_fine_tunes: int | None = None
    concurrent_generations: int | None = None
    generations_per_minute: int | None = None
    max_upload_bytes: int | None = None
    #: The Stripe price of this plan: a tenant whose subscription moves to it gets this plan.
    stripe_price_id: str | None = None

    @property
    def limits(self) -> PlanLimits:
        """Its limits by quota name, as ``admin.plans.create`` and ``replace`` take them."""
        return PlanLimits(
            gpu_seconds_per_month=self.gpu_seconds_per_month,
            storage_bytes=self.storage_bytes,
            models=self.models,
            concurrent_fine_tunes=self.concurrent_fine_tunes,
            concurrent_generations=self.concurrent_generations,
            generations_per_minute=self.generations_per_minute,
            max_upload_bytes=self.max_upload_bytes,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaUse(_Model):
    """One quota of a tenant: its limit (None: unlimited), what is used now (this month, or in
    the last minute, by the quota), what remains, and when a monthly allowance resets.

    ``when_reached`` says what new work meets at the limit: ``refused_402``, ``refused_413``,
    ``refused_429``, or ``queued`` (it waits for running work to finish).
    """

    quota: str
    used: float
    when_reached: str
    limit: int | None = None
    remaining: float | None = None
    resets_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Quotas(_Model):
    """A tenant's plan (its name; None when no plan exists: all unlimited), its status
    (``active``, ``past_due``, ``suspended``), an admin's overrides of the plan's limits, and
    every quota's use."""

    tenant_id: str
    status: str
    plan: str | None = None
    overrides: dict[str, int | None] = field(default_factory=dict)
    quotas: list[QuotaUse] = field(default_factory=list)

    def of(self, quota: str) -> QuotaUse:
        """The use of one quota by name, e.g. ``quotas.of("gpu_seconds_per_month").remaining``."""
        for use in self.quotas:
            if use.quota == quota:
                return use
        raise KeyError(quota)


@dataclass(frozen=True, slots=True, kw_only=True)
class Billing(_Model):
    """The tenant's billing: whether the server bills through Stripe (``enabled``), the tenant's
    ``status`` (``active``, ``past_due``: a payment failed and nothing new starts until it is
    paid, ``suspended``), its plan's name (None when no plan exists: all unlimited), its own
    plan's id (None: the default plan), whether it has a Stripe customer yet and Stripe's
    status of its subscription."""

    enabled: bool
    status: str
    has_customer: bool
    plan: str | None = None
    plan_id: str | None = None
    subscription_status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantBilling(Billing):
    """An admin's view of a tenant's billing: its Stripe ids, and how many ledger entries Stripe
    accepted as meter events (``sent_entries``) or are still to send (``unsent_entries``)."""

    tenant_id: str
    sent_entries: int
    unsent_entries: int
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BillingPortal(_Model):
    """A Stripe Customer Portal session for cards and invoices: open ``url`` once, soon."""

    url: str
