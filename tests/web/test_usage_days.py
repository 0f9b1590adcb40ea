"""Usage per day on ``/app/usage``: GPU time of each UTC day this month, as a chart and a table,
from the ledger through ``GET /v1/usage``'s service (over HTTP: no browser needed)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from service.pages.usage import usage_chart
from service.usage.models import Charge
from service.usage.schemas import FineTuneUsage, GenerationUsage, StorageUsage, UsageDay, UsageOut
from tests.helpers import PASSWORD, sign_up
from tests.web.operators import write_ledger

Client = AsyncTestClient[Litestar]


async def test_the_usage_page_shows_gpu_time_per_day(client: Client, settings: Settings) -> None:
    owner = await sign_up(client, "Daily")
    client.cookies.clear()
    await client.post("/signin", data={"email": owner.email, "password": PASSWORD})
    empty = await client.get("/app/usage")
    assert "Nothing used yet this month." in empty.text

    now = datetime.now(UTC)
    first = now.replace(day=1, hour=0, minute=30, second=0, microsecond=0)
    last_month = first - timedelta(days=2)
    write_ledger(
        settings,
        owner.tenant_id,
        (Charge.FINE_TUNE_GPU_SECONDS, 3600.0, first),
        (Charge.GENERATION_GPU_SECONDS, 90.0, now - timedelta(seconds=5)),
        (Charge.FINE_TUNE_GPU_SECONDS, 999.0, last_month),  # another month: not shown
    )
    shown = (await client.get("/app/usage")).text
    table = shown[shown.index('<table class="days">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r'<th scope="row" data-label="Day">([^<]+)</th>', table)
    days = (
        [now.strftime("%a %d %B")] if now.day == 1 else [now.strftime("%a %d %B"), first.strftime("%a %d %B")]
    )
    assert rows == days  # newest first, only days with work
    if now.day != 1:
        assert '<td data-label="Total">1 h 0 min</td>' in table
        assert '<td data-label="Total">1 min 30 s</td>' in table
    section = shown[shown.index('id="days-heading"') : shown.index('id="billing-heading"')]
    assert "16 min 39 s" not in section  # the ledger below lists it; the month's days do not
    assert "1 h 1 min" in section  # the month so far
    assert '<rect class="bar-tune"' in section and '<rect class="bar-video"' in section


def usage(days: list[UsageDay], since: date, until: date) -> UsageOut:
    return UsageOut(
        since=since,
        until=until,
        fine_tunes=FineTuneUsage(
            count=0, succeeded=0, gpu_seconds=sum(d.fine_tune_gpu_seconds for d in days)
        ),
        generations=GenerationUsage(
            count=0, succeeded=0, gpu_seconds=sum(d.generation_gpu_seconds for d in days), output_bytes=0
        ),
        storage=StorageUsage(footage_bytes=0, adapter_bytes=0, output_bytes=0, total_bytes=0),
        days=days,
    )


def test_the_chart_has_a_slot_for_every_day_and_the_busiest_fills_it() -> None:
    since = date(2026, 2, 1)
    days = [
        UsageDay(
            date=date(2026, 2, 3), fine_tune_gpu_seconds=300.0, generation_gpu_seconds=100.0, generations=2
        ),
        UsageDay(
            date=date(2026, 2, 5), fine_tune_gpu_seconds=-50.0, generation_gpu_seconds=0.0, generations=0
        ),
        UsageDay(
            date=date(2026, 2, 6), fine_tune_gpu_seconds=0.0, generation_gpu_seconds=200.0, generations=1
        ),
    ]
    chart = usage_chart(usage(days, since, date(2026, 2, 6)))
    assert [bar.day.day for bar in chart.days] == list(range(1, 29))  # the month, to come included
    assert [bar.worked for bar in chart.days[:7]] == [False, False, True, False, True, True, False]
    assert chart.width == 28 * 20
    busiest = chart.days[2]
    assert busiest.fine_tune_y == 0 and busiest.fine_tune_height + busiest.generation_height == chart.height
    assert busiest.generation_height == chart.height / 4
    assert chart.days[5].generation_height == chart.height / 2
    credited = chart.days[4]  # a credit never draws below the axis
    assert credited.fine_tune_height == 0 and credited.total == "50 s"
    assert chart.peak == "6 min 40 s" and chart.total == "9 min 10 s"
    assert [bar.x for bar in chart.days[:2]] == [3, 23]
    december = usage_chart(usage([], date(2026, 12, 1), date(2026, 12, 7)))
    assert (len(december.days), december.days[-1].day) == (31, date(2026, 12, 31))
