from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.usage import service
from service.usage.schemas import UsageOut

Since = Annotated[
    date | None,
    Parameter(description="First UTC day (YYYY-MM-DD); by default the first day of until's month."),
]
Until = Annotated[
    date | None, Parameter(description="Last UTC day, included (YYYY-MM-DD); by default today.")
]


class UsageController(Controller):
    path = "/v1/usage"
    tags = ["usage"]

    @get(operation_id="getUsage", opt=access(Access.MEMBER))
    async def get_usage(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        since: Since = None,
        until: Until = None,
    ) -> UsageOut:
        """The tenant's fine-tunes, generations and GPU seconds over a period of at most 366 UTC days
        (this month so far by default), per day, and what it stores now. GPU seconds and output
        bytes are the usage ledger's, each on the UTC day the work was done; each fine-tune and
        generation counts on the day it finished, or today while under way."""
        today = service.utc_today()
        period = service.resolve_period(since, until, today)
        return await service.tenant_usage(db_session, principal.tenant_id, period, today)
