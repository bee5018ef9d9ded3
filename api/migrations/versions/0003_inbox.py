"""inbox: browser sessions, login throttle, private notes, message flags, canned responses

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'staff_sessions',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('token_hash', sa.String(64), nullable=False, unique=True),
        sa.Column('csrf_token', sa.String(64), nullable=False),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff.id', ondelete='CASCADE'),
                  nullable=False, index=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('expires_at', TS, nullable=False),
    )
    op.create_table(
        'login_throttle',
        sa.Column('handle', sa.String(64), primary_key=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('locked_until', TS, nullable=True),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.create_table(
        'conversation_notes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('conversation_id', sa.Integer(),
                  sa.ForeignKey('conversations.id', ondelete='CASCADE'), nullable=False,
                  index=True),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff.id', ondelete='SET NULL'),
                  nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
    )
    op.create_table(
        'message_flags',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('message_id', sa.Integer(), sa.ForeignKey('messages.id', ondelete='CASCADE'),
                  nullable=False, index=True),
        sa.Column('conversation_id', sa.Integer(),
                  sa.ForeignKey('conversations.id', ondelete='CASCADE'), nullable=False,
                  index=True),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff.id', ondelete='SET NULL'),
                  nullable=True),
        sa.Column('reason', sa.String(500), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('created_at', TS, nullable=False),
    )
    op.create_table(
        'canned_responses',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('shortcut', sa.String(64), nullable=False, unique=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_by', sa.Integer(), sa.ForeignKey('staff.id', ondelete='SET NULL'),
                  nullable=True),
        sa.Column('created_at', TS, nullable=False),
    )


def downgrade() -> None:
    for name in ('canned_responses', 'message_flags', 'conversation_notes', 'login_throttle',
                 'staff_sessions'):
        op.drop_table(name)
