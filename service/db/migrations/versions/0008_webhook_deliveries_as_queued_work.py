"""webhook deliveries take the queued-work lease columns

Deliveries become ``core.work`` queued work: ``status`` takes ``WorkStatus`` values
(``PENDING`` becomes ``QUEUED``), ``next_attempt_at`` becomes ``not_before`` (the retry's
backoff; the lease expiry has its own column now), and the ``Leased`` columns are added.
Existing rows keep their attempts and when they are due; ``max_attempts`` starts at 10, the
default of ``RUSHES_WEBHOOKS__MAX_ATTEMPTS`` (new deliveries take the setting's value).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00.000000
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_DateTime = advanced_alchemy.types.datetime.DateTimeUTC


def _deliveries(*names: str) -> sa.TableClause:
    """The delivery table as the data migrations read it: its id, status and the named times."""
    return sa.table(
        'webhook_delivery',
        sa.column('id', advanced_alchemy.types.guid.GUID(length=16)),
        sa.column('status', sa.String(16)),
        *(sa.column(name, _DateTime(timezone=True)) for name in names),
    )


@contextmanager
def _attempts_kept() -> Iterator[None]:
    """SQLite changes a column's nullability by copying the table, and with foreign keys on,
    dropping the old copy deletes the attempt log (``ON DELETE CASCADE``): keep it aside."""
    if op.get_bind().dialect.name != 'sqlite':
        yield
        return
    op.execute('CREATE TEMP TABLE kept_webhook_attempt AS SELECT * FROM webhook_attempt')
    yield
    op.execute('DELETE FROM webhook_attempt')
    op.execute('INSERT INTO webhook_attempt SELECT * FROM kept_webhook_attempt')
    op.execute('DROP TABLE kept_webhook_attempt')


def upgrade() -> None:
    # Added and renamed in place (SQLite too), so the attempt log is still there to read below.
    op.drop_index('ix_webhook_delivery_due', table_name='webhook_delivery')
    op.execute('ALTER TABLE webhook_delivery RENAME COLUMN next_attempt_at TO not_before')
    for column in (
        sa.Column('cancel_requested', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('step', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('lease_owner', sa.String(length=200), nullable=True),
        sa.Column('lease_expires_at', _DateTime(timezone=True), nullable=True),
        sa.Column('failure_reason', sa.Text(), nullable=True),
        sa.Column('gpu_seconds', sa.Float(), nullable=False, server_default='0'),
        sa.Column('queued_at', _DateTime(timezone=True), nullable=True),
        sa.Column('started_at', _DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', _DateTime(timezone=True), nullable=True),
        sa.Column('max_attempts', sa.Integer(), nullable=False, server_default='10'),
    ):
        op.add_column('webhook_delivery', column)

    delivery = _deliveries(
        'not_before', 'queued_at', 'started_at', 'finished_at', 'created_at', 'updated_at',
        'delivered_at', 'last_attempt_at',
    )
    attempt = sa.table(
        'webhook_attempt',
        sa.column('delivery_id', advanced_alchemy.types.guid.GUID(length=16)),
        sa.column('created_at', _DateTime(timezone=True)),
    )
    first_attempt = (
        sa.select(sa.func.min(attempt.c.created_at))
        .where(attempt.c.delivery_id == delivery.c.id)
        .scalar_subquery()
    )
    # A pending delivery was waiting for its next attempt (or held by a dispatcher, whose
    # claim lapsed then): it is queued, due then. Final ones keep a due time, never read.
    op.execute(
        delivery.update().values(
            status=sa.case((delivery.c.status == 'PENDING', 'QUEUED'), else_=delivery.c.status),
            queued_at=delivery.c.created_at,
            not_before=sa.func.coalesce(delivery.c.not_before, delivery.c.updated_at),
            started_at=first_attempt,
            finished_at=sa.case(
                (delivery.c.status == 'SUCCEEDED', sa.func.coalesce(delivery.c.delivered_at, delivery.c.updated_at)),
                (delivery.c.status == 'FAILED', sa.func.coalesce(delivery.c.last_attempt_at, delivery.c.updated_at)),
                else_=None,
            ),
        )
    )

    with _attempts_kept(), op.batch_alter_table('webhook_delivery') as batch_op:
        batch_op.alter_column('not_before', nullable=False)
        batch_op.alter_column('queued_at', nullable=False)
    op.create_index('ix_webhook_delivery_due', 'webhook_delivery', ['status', 'not_before'], unique=False)
    op.create_index(
        op.f('ix_webhook_delivery_lease_expires_at'), 'webhook_delivery', ['lease_expires_at'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_webhook_delivery_lease_expires_at'), table_name='webhook_delivery')
    op.drop_index('ix_webhook_delivery_due', table_name='webhook_delivery')
    with _attempts_kept():
        with op.batch_alter_table('webhook_delivery') as batch_op:
            batch_op.alter_column('not_before', new_column_name='next_attempt_at', nullable=True)
        delivery = _deliveries('next_attempt_at', 'lease_expires_at')
        # Queued, running and cancelled (paused by a disabled endpoint) were all pending; a
        # running one's claim lapsed when its lease does, and a final one is due never.
        op.execute(
            delivery.update().values(
                next_attempt_at=sa.case(
                    (delivery.c.status == 'RUNNING', delivery.c.lease_expires_at),
                    (delivery.c.status.in_(['SUCCEEDED', 'FAILED']), None),
                    else_=delivery.c.next_attempt_at,
                ),
                status=sa.case(
                    (delivery.c.status.in_(['QUEUED', 'RUNNING', 'CANCELLED']), 'PENDING'),
                    else_=delivery.c.status,
                ),
            )
        )
        with op.batch_alter_table('webhook_delivery') as batch_op:
            for name in (
                'max_attempts', 'finished_at', 'started_at', 'queued_at', 'gpu_seconds', 'failure_reason',
                'lease_expires_at', 'lease_owner', 'step', 'cancel_requested',
            ):
                batch_op.drop_column(name)
    op.create_index('ix_webhook_delivery_due', 'webhook_delivery', ['status', 'next_attempt_at'], unique=False)
