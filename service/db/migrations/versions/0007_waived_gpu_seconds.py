"""fine-tune GPU seconds waived when a run fails by the platform's fault

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('fine_tune_job') as batch_op:
        batch_op.add_column(sa.Column('waived_gpu_seconds', sa.Float(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('fine_tune_job') as batch_op:
        batch_op.drop_column('waived_gpu_seconds')
