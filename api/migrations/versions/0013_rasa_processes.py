"""rasa processes: which model each Rasa process of RASA_URLS serves

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'rasa_processes',
        sa.Column('url', sa.String(500), nullable=False),
        sa.Column('model_id', sa.Integer(), nullable=True),
        sa.Column('error', sa.String(500), nullable=True),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['model_id'], ['bot_models.id'], ondelete='SET NULL',
                                name=op.f('fk_rasa_processes_model_id_bot_models')),
        sa.PrimaryKeyConstraint('url', name=op.f('pk_rasa_processes')),
    )


def downgrade() -> None:
    op.drop_table('rasa_processes')
