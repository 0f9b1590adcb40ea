"""deleted tenants: a row per deleted tenant, so the cleanup sweep deletes only their files

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 02:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
import advanced_alchemy.types
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deleted_tenant',
    sa.Column('deleted_tenant_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('objects_deleted_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deleted_tenant')),
    sa.UniqueConstraint('deleted_tenant_id', name=op.f('uq_deleted_tenant_deleted_tenant_id'))
    )


def downgrade() -> None:
    op.drop_table('deleted_tenant')
