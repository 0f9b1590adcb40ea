"""Quotas through the SDK, against the live server: refusals typed with the quota's figures, a 402
never retried, a 429's Retry-After honoured, the quota, ledger and plan resources, and the quota
commands.

Plans are platform-wide and the live server is shared by every SDK test: these tests name their
plans uniquely and never make one the default, so no other tenant's limits change.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import rushes
from rushes import types
from rushes.cli import main

from service.usage.models import Charge
from tests.sdk.conftest import LiveServer, charge, run
from tests.sdk.faults import Faults, FaultTransport

PROMPT = "rain on a window at night"


def _next_month() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> Iterator[rushes.Client]:
    """One platform admin for the module (making one takes a password hash)."""
    with rushes.Client(api_key=live_server.admin_api_key(), base_url=live_server.url) as admin_client:
        yield admin_client


@pytest.fixture
def tenant_id(client: rushes.Client) -> str:
    return client.me.get().tenant.id


def _counted(server: LiveServer, api_key: str, max_retries: int = 2) -> tuple[rushes.Client, Faults]:
    """A client whose every request is recorded (nothing is injected)."""
    faults = Faults()
    sdk = rushes.Client(
        api_key=api_key, base_url=server.url, transport=FaultTransport(faults), max_retries=max_retries
    )
    return sdk, faults


def _upload(client: rushes.Client, size: int) -> types.Upload:
    """Open an upload of ``size`` bytes: admission reserves them against the storage quota."""
    return client.uploads.create(
        filename="clip.mp4", size=size, sha256="0" * 64, content_type="video/mp4", rights="owned"
    )


def test_a_used_up_allowance_is_a_402_with_its_figures_and_is_never_retried(
    live_server: LiveServer, api_key: str, admin: rushes.Client, tenant_id: str, model_id: str
) -> None:
    admin.admin.tenants.set_quotas(tenant_id, overrides={"gpu_seconds_per_month": 0})
    counted, faults = _counted(live_server, api_key)

    with counted, pytest.raises(rushes.QuotaExceededError) as refused:
        counted.generations.create(model_id, PROMPT)

    assert len(faults.sent) == 1
    error = refused.value
    assert error.status_code == 402 and (error.type or "").endswith("/quota-exceeded")
    assert (error.quota, error.limit, error.used) == ("gpu_seconds_per_month", 0, 0)
    assert error.resets_at == _next_month()
    assert str(error).startswith("402 This month's 0 GPU seconds are used") and error.request_id


def test_storage_upload_size_and_past_due_refusals_say_what_they_can(
    api_key: str, client: rushes.Client, admin: rushes.Client, tenant_id: str
) -> None:
    admin.admin.tenants.set_quotas(tenant_id, overrides={"storage_bytes": 100, "max_upload_bytes": 1000})

    with pytest.raises(rushes.PayloadTooLargeError) as too_large:
        _upload(client, 5000)
    assert too_large.value.status_code == 413
    assert (too_large.value.quota, too_large.value.limit, too_large.value.used) == (
        "max_upload_bytes",
        1000,
        5000,
    )
    with pytest.raises(rushes.QuotaExceededError) as full:
        _upload(client, 500)
    assert (full.value.quota, full.value.limit, full.value.used) == ("storage_bytes", 100, 0)
    assert full.value.resets_at is None  # storage is not a monthly allowance

    admin.admin.tenants.update(tenant_id, status="past_due")
    with pytest.raises(rushes.QuotaExceededError) as past_due:
        _upload(client, 50)
    assert (past_due.value.type or "").endswith("/payment-required") and "past due" in str(past_due.value)
    assert (past_due.value.quota, past_due.value.limit, past_due.value.used) == (None, None, None)
    assert client.quotas.get().status == "past_due"  # reading still works
    admin.admin.tenants.update(tenant_id, status="active")
    assert _upload(client, 50).status == "open"


def test_a_rate_limit_is_a_429_with_its_figures_and_retry_after(
    live_server: LiveServer,
    api_key: str,
    client: rushes.Client,
    admin: rushes.Client,
    tenant_id: str,
    model_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin.admin.tenants.set_quotas(tenant_id, overrides={"generations_per_minute": 1})
    client.generations.create(model_id, PROMPT)
    once, faults = _counted(live_server, api_key, max_retries=0)

    with once, pytest.raises(rushes.RateLimitError) as limited:
        once.generations.create(model_id, PROMPT)

    assert len(faults.sent) == 1
    error = limited.value
    assert (error.type or "").endswith("/rate-limited") and "per minute" in str(error)
    assert (error.quota, error.limit, error.used, error.resets_at) == ("generations_per_minute", 1, 1, None)
    hint = error.retry_after
    assert hint is not None and 1 <= hint <= 60 and hint == float(error.response.headers["retry-after"])

    # With retries, the SDK waits as long as Retry-After says before trying again (the wait is
    # recorded here instead of slept), with the same Idempotency-Key, and raises after the last.
    slept: list[float] = []
    monkeypatch.setattr(rushes._client, "time", SimpleNamespace(sleep=slept.append))
    retrying, faults = _counted(live_server, api_key, max_retries=2)
    with retrying, pytest.raises(rushes.RateLimitError) as still_limited:
        retrying.generations.create(model_id, PROMPT)
    assert len(faults.sent) == 3 and len({r.headers["idempotency-key"] for r in faults.sent}) == 1
    assert len(slept) == 2 and slept[0].is_integer() and hint - 2 <= slept[0] <= hint
    assert still_limited.value.quota == "generations_per_minute"
    assert len(list(client.generations.list())) == 1


def test_a_retry_after_the_wait_is_admitted_once_the_rate_allows(
    live_server: LiveServer,
    api_key: str,
    client: rushes.Client,
    admin: rushes.Client,
    tenant_id: str,
    model_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin.admin.tenants.set_quotas(tenant_id, overrides={"generations_per_minute": 1})
    client.generations.create(model_id, PROMPT)
    slept: list[float] = []

    def wait(seconds: float) -> None:
        # While the SDK waits out Retry-After, the window moves on: here the limit is lifted.
        slept.append(seconds)
        admin.admin.tenants.set_quotas(tenant_id, overrides={})

    monkeypatch.setattr(rushes._client, "time", SimpleNamespace(sleep=wait))
    retrying, faults = _counted(live_server, api_key)
    with retrying:
        generation = retrying.generations.create(model_id, PROMPT)

    assert len(faults.sent) == 2 and len(slept) == 1 and slept[0] >= 1
    assert generation.status == "queued"
    assert len(list(client.generations.list())) == 2


def test_plans_and_a_tenants_quotas(client: rushes.Client, admin: rushes.Client, tenant_id: str) -> None:
    default = next(plan for plan in admin.admin.plans.list() if plan.is_default)
    quotas = client.quotas.get()
    assert isinstance(quotas, types.Quotas)
    assert (quotas.tenant_id, quotas.status, quotas.plan, quotas.overrides) == (
        tenant_id,
        "active",
        default.name,
        {},
    )
    assert [use.quota for use in quotas.quotas] == list(types.QUOTA_NAMES)
    gpu = quotas.of("gpu_seconds_per_month")
    assert (gpu.used, gpu.resets_at, gpu.when_reached) == (0, _next_month(), "refused_402")
    assert quotas.of("concurrent_generations").when_reached == "queued"
    with pytest.raises(KeyError):
        quotas.of("minutes")

    name = f"Indie {uuid.uuid4().hex[:8]}"
    plan = admin.admin.plans.create(name=name, gpu_seconds_per_month=36_000, models=5)
    assert isinstance(plan, types.Plan) and not plan.is_default
    assert (plan.name, plan.gpu_seconds_per_month, plan.models, plan.storage_bytes) == (name, 36_000, 5, None)
    assert admin.admin.plans.get(plan.id) == plan and plan in admin.admin.plans.list()
    with pytest.raises(rushes.ConflictError, match="exists already"):
        admin.admin.plans.create(name=name)
    with pytest.raises(rushes.BadRequestError):
        admin.admin.plans.create(name=f"{name} 2", models=-1)
    # Replacing is whole: a limit kept is passed again, one left out becomes unlimited.
    plan = admin.admin.plans.replace(plan.id, name=name, **(plan.limits | {"models": 7}))
    assert (plan.gpu_seconds_per_month, plan.models) == (36_000, 7)

    moved = admin.admin.tenants.set_quotas(tenant_id, plan_id=plan.id)
    assert (moved.plan, moved.overrides) == (name, {})
    # Only what is given is sent: overrides alone leave the plan, a plan alone the overrides.
    overridden = admin.admin.tenants.set_quotas(tenant_id, overrides={"models": 2, "storage_bytes": None})
    assert (overridden.plan, overridden.overrides) == (name, {"models": 2, "storage_bytes": None})
    assert overridden.of("models").limit == 2 and overridden.of("models").remaining == 2
    assert overridden.of("gpu_seconds_per_month").limit == 36_000
    assert client.quotas.get() == overridden == admin.admin.tenants.quotas(tenant_id)
    with pytest.raises(rushes.ConflictError, match="1 tenant"):
        admin.admin.plans.delete(plan.id)
    back = admin.admin.tenants.set_quotas(tenant_id, plan_id=None)
    assert (back.plan, back.overrides) == (default.name, {"models": 2, "storage_bytes": None})
    assert admin.admin.tenants.set_quotas(tenant_id, overrides=None).overrides == {}

    admin.admin.plans.delete(plan.id)
    with pytest.raises(rushes.NotFoundError):
        admin.admin.plans.get(plan.id)
    with pytest.raises(rushes.NotFoundError):
        admin.admin.tenants.set_quotas(tenant_id, plan_id=plan.id)
    with pytest.raises(rushes.NotFoundError):
        admin.admin.tenants.quotas(str(uuid.uuid4()))
    with pytest.raises(rushes.PermissionDeniedError):
        client.admin.plans.list()
    with pytest.raises(rushes.PermissionDeniedError):
        client.admin.tenants.set_quotas(tenant_id, overrides={})


def test_the_ledger_lists_every_charge_newest_first(
    live_server: LiveServer, api_key: str, client: rushes.Client, admin: rushes.Client, tenant_id: str
) -> None:
    job, generation = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=0)
    charge(live_server, tenant_id, job, Charge.FINE_TUNE_GPU_SECONDS, 30.0, now - timedelta(seconds=3))
    charge(live_server, tenant_id, job, Charge.FINE_TUNE_GPU_SECONDS, 12.5, now - timedelta(seconds=2))
    charge(live_server, tenant_id, generation, Charge.OUTPUT_BYTES, 4096, now - timedelta(seconds=1))

    entries = list(client.usage.ledger(limit=2))  # two pages
    assert all(isinstance(entry, types.LedgerEntry) for entry in entries)
    assert [(e.charge, e.quantity, e.work_id, e.occurred_at) for e in entries] == [
        ("output_bytes", 4096, generation, now - timedelta(seconds=1)),
        ("fine_tune_gpu_seconds", 12.5, job, now - timedelta(seconds=2)),
        ("fine_tune_gpu_seconds", 30.0, job, now - timedelta(seconds=3)),
    ]
    assert len({e.id for e in entries}) == 3 and entries[1].attempt == 1
    assert client.usage.ledger(limit=2).first_page().total == 3
    assert list(admin.admin.tenants.ledger(tenant_id)) == entries
    # Quotas read the same ledger: GPU seconds charged this month.
    assert client.quotas.get().of("gpu_seconds_per_month").used == 42.5
    assert list(admin.usage.ledger()) == []  # the admin's own tenant has none

    async def from_async() -> tuple[types.Quotas, list[types.LedgerEntry]]:
        async with rushes.AsyncClient(api_key=api_key, base_url=live_server.url) as async_client:
            return await async_client.quotas.get(), [e async for e in async_client.usage.ledger()]

    quotas, listed = asyncio.run(from_async())
    assert quotas.of("gpu_seconds_per_month").used == 42.5 and listed == entries


def _quota_line(quota: str, limit: str, used: str, remaining: str, reached: str) -> str:
    return f"{quota:<24}{limit:>12}{used:>14}{remaining:>14}  {reached}"


def test_quota_commands(
    cli_env: Path,
    live_server: LiveServer,
    api_key: str,
    client: rushes.Client,
    admin: rushes.Client,
    tenant_id: str,
    noise_png: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    as_admin, as_tenant = ("--api-key", admin.api_key), ("--api-key", api_key)
    code, out, err = run(capsys, "quotas", *as_tenant)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:5] == [
        "plan         default",
        "status       active",
        "overrides    none",
        "",
        "quota                          limit          used     remaining  at the limit",
    ]
    assert len(lines) == 5 + len(types.QUOTA_NAMES)
    assert lines[5].startswith(_quota_line("gpu_seconds_per_month", "unlimited", "0", "-", "refused (402); "))
    code, out, _ = run(capsys, "quotas", "--json", *as_tenant)
    assert code == 0 and json.loads(out) == client.quotas.get().to_dict()

    # Plans: create, show, update (what is not named keeps its value), list.
    name = f"Studio {uuid.uuid4().hex[:8]}"
    code, out, err = run(
        capsys,
        "admin",
        "plans",
        "create",
        name,
        "--set",
        "models=3",
        "--set",
        "gpu_seconds_per_month=3600",
        *as_admin,
    )
    assert code == 0, err
    plan_id = out.strip()
    code, out, _ = run(capsys, "admin", "plans", "show", plan_id, *as_admin)
    assert f"name: {name}" in out.splitlines() and "models: 3" in out.splitlines()
    assert "storage_bytes: unlimited" in out.splitlines()
    code, out, err = run(
        capsys,
        "admin",
        "plans",
        "update",
        plan_id,
        "--set",
        "models=unlimited",
        "--set",
        "storage_bytes=1048576",
        *as_admin,
    )
    assert code == 0, err
    shown = out.splitlines()
    assert {
        "models: unlimited",
        "storage_bytes: 1048576",
        "gpu_seconds_per_month: 3600",
        "is_default: False",
    } <= set(shown)
    code, out, _ = run(capsys, "admin", "plans", *as_admin)
    # Columns are two or more spaces apart; a plan's name may hold one.
    (row,) = [re.split(r"\s{2,}", line) for line in out.splitlines() if line.startswith(plan_id)]
    assert row[:6] == [plan_id, name, "no", "3600", "1048576", "unlimited"]
    code, out, _ = run(capsys, "admin", "plans", "list", "--json", *as_admin)
    assert {"id": plan_id, "name": name} in [
        {k: json.loads(line)[k] for k in ("id", "name")} for line in out.splitlines()
    ]

    # A tenant's plan and overrides; overrides not named keep their values.
    code, out, err = run(
        capsys, "admin", "tenants", "set-quota", tenant_id, "--plan", plan_id, "--set", "models=2", *as_admin
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:3] == [f"plan         {name}", "status       active", "overrides    models=2"]
    assert _quota_line("models", "2", "0", "2", "refused (402)") in lines
    assert _quota_line("storage_bytes", "1.0 MiB", "0 B", "1.0 MiB", "refused (402)") in lines
    code, out, _ = run(
        capsys,
        "admin",
        "tenants",
        "set-quota",
        tenant_id,
        "--set",
        "generations_per_minute=unlimited",
        *as_admin,
    )
    assert out.splitlines()[2] == "overrides    models=2, generations_per_minute=unlimited"
    code, out, _ = run(capsys, "admin", "tenants", "set-quota", tenant_id, "--unset", "models", *as_admin)
    assert out.splitlines()[2] == "overrides    generations_per_minute=unlimited"
    code, out, _ = run(capsys, "admin", "tenants", "quotas", tenant_id, *as_admin)
    assert out == run(capsys, "quotas", *as_tenant)[1]
    code, out, _ = run(capsys, "admin", "tenants", "quotas", tenant_id, "--json", *as_admin)
    assert json.loads(out) == client.quotas.get().to_dict()
    code, out, err = run(capsys, "admin", "tenants", "set-quota", tenant_id, *as_admin)
    assert (code, out) == (
        1,
        "",
    ) and err == "rushes: error: nothing to change: give --plan, --set, --unset or --clear\n"

    code, out, err = run(capsys, "admin", "plans", "delete", plan_id, *as_admin)
    assert code == 1 and err.startswith(f"rushes: error: 409 1 tenant(s) are on plan {name!r}")
    code, out, _ = run(
        capsys, "admin", "tenants", "set-quota", tenant_id, "--plan", "default", "--clear", *as_admin
    )
    assert out.splitlines()[:3] == ["plan         default", "status       active", "overrides    none"]
    code, out, _ = run(capsys, "admin", "plans", "delete", plan_id, *as_admin)
    assert (code, out) == (0, f"deleted {plan_id}\n")

    # Status: past due reads but starts nothing; suspended does nothing; active again.
    code, out, _ = run(capsys, "admin", "tenants", "past-due", tenant_id, *as_admin)
    assert code == 0 and out == f"Studio ({tenant_id}): past_due\n"
    assert run(capsys, "quotas", *as_tenant)[1].splitlines()[1] == "status       past_due"
    code, out, err = run(capsys, "upload", str(noise_png), "--rights", "owned", "--no-progress", *as_tenant)
    assert (code, out) == (1, "") and err.startswith("rushes: error: 402 This tenant's payment is past due")
    code, out, _ = run(capsys, "admin", "tenants", "suspend", tenant_id, "--json", *as_admin)
    assert code == 0 and json.loads(out)["status"] == "suspended"
    code, _, err = run(capsys, "quotas", *as_tenant)
    assert code == 1 and err.startswith("rushes: error: 403 This tenant is suspended")
    code, out, _ = run(capsys, "admin", "tenants", "activate", tenant_id, *as_admin)
    assert out == f"Studio ({tenant_id}): active\n" and run(capsys, "quotas", *as_tenant)[0] == 0

    # The ledger, the tenant's own and an admin's view of it.
    at = datetime.now(UTC).replace(microsecond=0)
    work = str(uuid.uuid4())
    charge(live_server, tenant_id, work, Charge.GENERATION_GPU_SECONDS, 2.5, at)
    code, out, _ = run(capsys, "ledger", *as_tenant)
    (entry,) = client.usage.ledger()
    header, row = out.splitlines()
    assert header.split() == ["when", "(UTC)", "charge", "quantity", "work", "attempt", "id"]
    assert row.split() == [
        f"{at:%Y-%m-%d}",
        f"{at:%H:%M:%S}",
        "generation_gpu_seconds",
        "2.5",
        work,
        "1",
        entry.id,
    ]
    assert run(capsys, "admin", "tenants", "ledger", tenant_id, *as_admin)[1] == out
    code, out, _ = run(capsys, "ledger", "--json", *as_tenant)
    assert [json.loads(line) for line in out.splitlines()] == [entry.to_dict()]

    # Admin commands refuse a tenant's key; a bad limit is a usage error.
    code, _, err = run(capsys, "admin", "plans", *as_tenant)
    assert code == 1 and "403 Only platform admins may do this." in err
    for bad in ("minutes=3", "models=-1", "models=many", "models"):
        with pytest.raises(SystemExit) as usage:
            main(["admin", "tenants", "set-quota", tenant_id, "--set", bad])
        assert usage.value.code == 2
    assert "QUOTA one of gpu_seconds_per_month, storage_bytes" in capsys.readouterr().err
