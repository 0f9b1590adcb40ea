"""memorisation check: frame hashes of footage, the verdict on generations

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 19:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
import advanced_alchemy.types
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Footage uploaded before this has no rows; the first generation checked against it hashes it.
    op.create_table('frame_hash',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('asset_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('bits', sa.LargeBinary(length=32), nullable=False),
    sa.Column('quality', sa.Integer(), nullable=False),
    sa.Column('tenant_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], name=op.f('fk_frame_hash_asset_id_asset'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_frame_hash_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_frame_hash'))
    )
    with op.batch_alter_table('frame_hash', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_frame_hash_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_frame_hash_tenant_id'), ['tenant_id'], unique=False)

    # Null for generations finished before the check existed.
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('memorisation', advanced_alchemy.types.JsonB, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.drop_column('memorisation')
    with op.batch_alter_table('frame_hash', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_frame_hash_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_frame_hash_asset_id'))
    op.drop_table('frame_hash')
