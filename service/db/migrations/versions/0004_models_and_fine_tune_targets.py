"""models and fine-tune targets

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 07:33:03.533688
"""
from __future__ import annotations

import sqlalchemy as sa
import advanced_alchemy.types
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('base_id', sa.String(length=64), nullable=False),
    sa.Column('created_by', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('version_count', sa.Integer(), nullable=False),
    sa.Column('tenant_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_model_created_by_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_model_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_model_tenant_id'))
    )
    with op.batch_alter_table('model', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('model_version',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('model_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('job_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('dataset_version_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('base_id', sa.String(length=64), nullable=False),
    sa.Column('trigger_word', sa.String(length=64), nullable=True),
    sa.Column('config', advanced_alchemy.types.JsonB, nullable=False),
    sa.Column('adapter_sha256', sa.String(length=64), nullable=False),
    sa.Column('adapter_bytes', sa.BigInteger(), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('final_loss', sa.Float(), nullable=True),
    sa.Column('tenant_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_version_id'], ['dataset_version.id'], name=op.f('fk_model_version_dataset_version_id_dataset_version'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['job_id'], ['fine_tune_job.id'], name=op.f('fk_model_version_job_id_fine_tune_job'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['model_id'], ['model.id'], name=op.f('fk_model_version_model_id_model'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_model_version_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_version')),
    sa.UniqueConstraint('job_id', name=op.f('uq_model_version_job_id')),
    sa.UniqueConstraint('model_id', 'number', name=op.f('uq_model_version_model_id'))
    )
    with op.batch_alter_table('model_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_version_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_model_version_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('fine_tune_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_id', advanced_alchemy.types.guid.GUID(length=16), nullable=True))
        batch_op.add_column(sa.Column('model_version_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False))
        batch_op.create_index(batch_op.f('ix_fine_tune_job_model_id'), ['model_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_fine_tune_job_model_id_model'), 'model', ['model_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('fine_tune_job', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_fine_tune_job_model_id_model'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_fine_tune_job_model_id'))
        batch_op.drop_column('model_version_id')
        batch_op.drop_column('model_id')

    with op.batch_alter_table('model_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_version_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_model_version_model_id'))

    op.drop_table('model_version')
    with op.batch_alter_table('model', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_tenant_id'))

    op.drop_table('model')
