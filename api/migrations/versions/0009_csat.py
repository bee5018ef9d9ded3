"""csat: one fan-satisfaction survey per conversation (score 1-5, optional comment)

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'csat_responses',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('score', sa.Integer(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('language', sa.String(8), nullable=True),
        sa.Column('channel', sa.Enum('messenger', 'webchat', 'rest', name='channel',
                                     native_enum=False, length=16), nullable=False),
        sa.Column('asked_at', TS, nullable=False),
        sa.Column('answered_at', TS, nullable=True),
        sa.Column('comment_at', TS, nullable=True),
        sa.CheckConstraint('score BETWEEN 1 AND 5', name=op.f('ck_csat_responses_score_range')),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                                name=op.f('fk_csat_responses_conversation_id_conversations'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'],
                                name=op.f('fk_csat_responses_staff_id_staff'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_csat_responses')),
        sa.UniqueConstraint('conversation_id', name=op.f('uq_csat_responses_conversation_id')),
    )


def downgrade() -> None:
    op.drop_table('csat_responses')
