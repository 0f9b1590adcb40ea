"""generations and model guardrails

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 10:14:25.996383
"""
from __future__ import annotations

import sqlalchemy as sa
import advanced_alchemy.types
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('generation',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('model_id', advanced_alchemy.types.guid.GUID(length=16), nullable=True),
    sa.Column('model_version_id', advanced_alchemy.types.guid.GUID(length=16), nullable=True),
    sa.Column('base_id', sa.String(length=64), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('negative_prompt', sa.Text(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('frames', sa.Integer(), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('guidance', sa.Float(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('adapter_strength', sa.Float(), nullable=False),
    sa.Column('status', sa.Enum('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', name='jobstatus', native_enum=False, length=16), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=200), nullable=True),
    sa.Column('lease_expires_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('gpu_seconds', sa.Float(), nullable=False),
    sa.Column('queued_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('started_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('finished_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('created_by', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('output_bytes', sa.BigInteger(), nullable=True),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('tenant_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_generation_created_by_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['model_id'], ['model.id'], name=op.f('fk_generation_model_id_model'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_version.id'], name=op.f('fk_generation_model_version_id_model_version'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_generation_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generation')),
    sa.UniqueConstraint('tenant_id', 'idempotency_key', name=op.f('uq_generation_tenant_id'))
    )
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_generation_lease_expires_at'), ['lease_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_generation_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_generation_model_version_id'), ['model_version_id'], unique=False)
        batch_op.create_index('ix_generation_queue', ['status', 'base_id', 'queued_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_generation_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('generation_event',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('generation_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('data', advanced_alchemy.types.JsonB, nullable=False),
    sa.Column('tenant_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['generation_id'], ['generation.id'], name=op.f('fk_generation_event_generation_id_generation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_generation_event_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generation_event')),
    sa.UniqueConstraint('generation_id', 'seq', name=op.f('uq_generation_event_generation_id'))
    )
    with op.batch_alter_table('generation_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_generation_event_generation_id'), ['generation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_generation_event_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('model', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guardrails', advanced_alchemy.types.JsonB, server_default=sa.text("'{}'"), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('model', schema=None) as batch_op:
        batch_op.drop_column('guardrails')

    with op.batch_alter_table('generation_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_generation_event_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_generation_event_generation_id'))

    op.drop_table('generation_event')
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_generation_tenant_id'))
        batch_op.drop_index('ix_generation_queue')
        batch_op.drop_index(batch_op.f('ix_generation_model_version_id'))
        batch_op.drop_index(batch_op.f('ix_generation_model_id'))
        batch_op.drop_index(batch_op.f('ix_generation_lease_expires_at'))

    op.drop_table('generation')
