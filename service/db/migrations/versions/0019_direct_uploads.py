"""direct uploads: how a session's bytes travel, and the ingest role's checks of a whole file;
a part's sha256 only when it was checked against a Content-Digest

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 09:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
import advanced_alchemy.types
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('upload_session') as batch_op:
        batch_op.add_column(sa.Column('transfer', sa.Enum('API', 'DIRECT', name='transfer', native_enum=False, length=16), server_default='API', nullable=False))
        batch_op.add_column(sa.Column('allow_duplicate', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('failure', advanced_alchemy.types.JsonB, nullable=True))
        batch_op.add_column(sa.Column('verify_owner', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('verify_until', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('verify_attempts', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('upload_part') as batch_op:
        batch_op.alter_column('sha256', existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE upload_part SET sha256 = '' WHERE sha256 IS NULL")
    with op.batch_alter_table('upload_part') as batch_op:
        batch_op.alter_column('sha256', existing_type=sa.String(length=64), nullable=False)
    with op.batch_alter_table('upload_session') as batch_op:
        batch_op.drop_column('verify_attempts')
        batch_op.drop_column('verify_until')
        batch_op.drop_column('verify_owner')
        batch_op.drop_column('failure')
        batch_op.drop_column('allow_duplicate')
        batch_op.drop_column('transfer')
