"""The first platform admin, made from the command line rather than the API."""

from __future__ import annotations

from sqlalchemy import select

from core.settings import Settings
from service.accounts.models import Membership, Role, Tenant, User
from service.accounts.schemas import Password
from service.auth.secrets import hash_password
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped


async def make_platform_admin(settings: Settings, email: str, password: str, tenant_name: str) -> bool:
    """Returns whether a new account was created."""
    from pydantic import TypeAdapter

    TypeAdapter(Password).validate_python(password)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            mark_unscoped(session)
            user = await session.scalar(select(User).where(User.email == email.lower()))
            created = user is None
            if user is None:
                user = User(
                    email=email.lower(), password_hash=hash_password(password), is_platform_admin=True
                )
                tenant = Tenant(name=tenant_name)
                session.add_all([user, tenant])
                await session.flush()
                session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=Role.OWNER))
            user.is_platform_admin = True
            await session.commit()
    finally:
        await engine.dispose()
    return created
