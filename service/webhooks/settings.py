"""``RUSHES_WEBHOOKS__*``: signing, what may be called, and the retry schedule."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator


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
