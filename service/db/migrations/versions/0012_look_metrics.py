"""look metrics on model versions

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 18:40:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
import advanced_alchemy.types
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and without a default: versions made before measuring existed were never measured.
    with op.batch_alter_table('model_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('look', advanced_alchemy.types.JsonB, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('model_version', schema=None) as batch_op:
        batch_op.drop_column('look')
