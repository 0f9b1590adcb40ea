"""webhook event types named with their kind of work (fine_tune.succeeded)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 18:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
import advanced_alchemy.types
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# Before this, webhooks carried fine-tune events only, under their short names.
_KIND = "fine_tune."

_endpoint = sa.table(
    "webhook_endpoint",
    sa.column("id", advanced_alchemy.types.GUID()),
    sa.column("event_types", advanced_alchemy.types.JsonB),
)
_delivery = sa.table("webhook_delivery", sa.column("event_type", sa.String(32)))


def _rename(to_new: bool) -> None:
    bind = op.get_bind()
    for endpoint_id, types in bind.execute(sa.select(_endpoint.c.id, _endpoint.c.event_types)).all():
        if to_new:
            renamed = [t if "." in t else _KIND + t for t in types]
        else:  # back to short names, dropping what the old code cannot deliver
            renamed = [t.removeprefix(_KIND) for t in types if t.startswith(_KIND)]
        bind.execute(_endpoint.update().where(_endpoint.c.id == endpoint_id).values(event_types=renamed))
    if to_new:
        bind.execute(
            _delivery.update()
            .where(~_delivery.c.event_type.contains("."))
            .values(event_type=sa.literal(_KIND) + _delivery.c.event_type)
        )
    else:
        bind.execute(
            _delivery.update()
            .where(_delivery.c.event_type.startswith(_KIND))
            .values(event_type=sa.func.substr(_delivery.c.event_type, len(_KIND) + 1))
        )


def upgrade() -> None:
    _rename(to_new=True)


def downgrade() -> None:
    _rename(to_new=False)
