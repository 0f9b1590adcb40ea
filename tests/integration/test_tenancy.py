"""The one scoping mechanism: every ORM statement on tenant-owned rows is filtered, and
statements it could not filter are refused rather than run unfiltered."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from service.accounts.models import ApiKey, Tenant, User
from service.db.engine import create_engine, session_factory
from service.db.tenancy import TenantScopeError, set_tenant, unscoped


@pytest.fixture
async def session(settings: Settings):  # type: ignore[no-untyped-def]
    engine = create_engine(settings.database_url)
    async with session_factory(engine)() as db:
        yield db
    await engine.dispose()


async def two_tenants(session: AsyncSession) -> tuple[UUID, UUID]:
    ids = []
    with unscoped(session):
        for n in range(2):
            tenant = Tenant(name=f"t{n}")
            user = User(email=f"u{n}@example.com", password_hash="x", is_platform_admin=False)
            session.add_all([tenant, user])
            await session.flush()
            session.add(
                ApiKey(
                    name=f"k{n}",
                    prefix=f"prefix{n}",
                    secret_hash="h",
                    created_by=user.id,
                    tenant_id=tenant.id,
                )
            )
        await session.commit()
        ids = list((await session.scalars(select(Tenant.id).order_by(Tenant.name))).all())
    return ids[0], ids[1]


async def test_reads_updates_and_deletes_see_only_the_tenant(session: AsyncSession) -> None:
    first, second = await two_tenants(session)
    set_tenant(session, first)
    assert [k.name for k in (await session.scalars(select(ApiKey))).all()] == ["k0"]
    assert await session.scalar(select(func.count(ApiKey.id))) == 1
    assert await session.scalar(select(func.count()).select_from(select(ApiKey).subquery())) == 1
    assert (await session.execute(update(ApiKey).values(name="renamed"))).rowcount == 1  # type: ignore[attr-defined]
    set_tenant(session, second)
    assert [k.name for k in (await session.scalars(select(ApiKey))).all()] == ["k1"]
    other_id = await session.scalar(select(ApiKey.id))
    set_tenant(session, first)
    session.expunge_all()
    assert await session.get(ApiKey, other_id) is None
    assert (await session.execute(delete(ApiKey).where(ApiKey.id == other_id))).rowcount == 0  # type: ignore[attr-defined]


async def test_new_rows_are_stamped_and_cannot_name_another_tenant(session: AsyncSession) -> None:
    first, second = await two_tenants(session)
    set_tenant(session, first)
    user_id = await session.scalar(select(User.id).limit(1))
    key = ApiKey(name="stamped", prefix="prefix9", secret_hash="h", created_by=user_id)
    session.add(key)
    await session.flush()
    assert key.tenant_id == first
    session.add(
        ApiKey(name="smuggled", prefix="prefix8", secret_hash="h", created_by=user_id, tenant_id=second)
    )
    with pytest.raises(TenantScopeError, match="another tenant"):
        await session.flush()


async def test_a_session_without_a_tenant_is_refused(session: AsyncSession) -> None:
    await two_tenants(session)
    with pytest.raises(TenantScopeError, match="no tenant"):
        await session.scalars(select(ApiKey))
    # Tables that belong to no tenant stay readable.
    assert await session.scalar(select(func.count(Tenant.id))) == 2


async def test_statements_that_cannot_be_filtered_are_refused(session: AsyncSession) -> None:
    first, _ = await two_tenants(session)
    set_tenant(session, first)
    with pytest.raises(TenantScopeError, match="without their entity"):
        await session.scalar(select(func.count()).select_from(ApiKey))
    with pytest.raises(TenantScopeError, match="without their entity"):
        await session.scalar(select(func.count()).where(ApiKey.name == "k1"))
