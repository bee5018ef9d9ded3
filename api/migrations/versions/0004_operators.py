"""operators: review queue, training-data audit, model registry, training jobs

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'review_items',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('fingerprint', sa.String(64), nullable=False, unique=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('language', sa.String(8), nullable=True),
        sa.Column('status', sa.String(16), nullable=False, index=True),
        sa.Column('reasons', JSON, nullable=False),
        sa.Column('occurrences', sa.Integer(), nullable=False),
        sa.Column('predicted_intent', sa.String(100), nullable=True),
        sa.Column('confidence', sa.Double(), nullable=True),
        sa.Column('ranking', JSON, nullable=False),
        sa.Column('first_seen_at', TS, nullable=False),
        sa.Column('last_seen_at', TS, nullable=False, index=True),
        sa.Column('intent', sa.String(100), nullable=True),
        sa.Column('example_text', sa.Text(), nullable=True),
        sa.Column('annotated_by', sa.String(64), nullable=True),
        sa.Column('annotated_at', TS, nullable=True),
    )
    op.create_table(
        'review_messages',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('item_id', sa.Integer(), sa.ForeignKey('review_items.id', ondelete='CASCADE'),
                  nullable=False, index=True),
        sa.Column('message_id', sa.Integer(), sa.ForeignKey('messages.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('conversation_id', sa.Integer(),
                  sa.ForeignKey('conversations.id', ondelete='CASCADE'), nullable=False),
        sa.Column('reasons', JSON, nullable=False),
        sa.Column('note', sa.String(500), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.UniqueConstraint('message_id'),
    )
    op.create_table(
        'review_cursor',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('last_message_id', sa.Integer(), nullable=False),
        sa.Column('handoffs_seen_until', TS, nullable=True),
    )
    op.create_table(
        'training_data_changes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('at', TS, nullable=False, index=True),
        sa.Column('by', sa.String(64), nullable=False),
        sa.Column('action', sa.String(32), nullable=False),
        sa.Column('intent', sa.String(100), nullable=False),
        sa.Column('example_text', sa.Text(), nullable=True),
        sa.Column('item_id', sa.Integer(), sa.ForeignKey('review_items.id', ondelete='SET NULL'),
                  nullable=True),
        sa.Column('files', JSON, nullable=False),
    )
    op.create_table(
        'bot_models',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('path', sa.String(1000), nullable=False),
        sa.Column('sha256', sa.String(64), nullable=False, index=True),
        sa.Column('data_hash', sa.String(64), nullable=True),
        sa.Column('source', sa.String(16), nullable=False),
        sa.Column('status', sa.String(16), nullable=False, index=True),
        sa.Column('created_by', sa.String(64), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('metrics', JSON, nullable=True),
        sa.Column('gate', JSON, nullable=True),
        sa.Column('compared_with_id', sa.Integer(),
                  sa.ForeignKey('bot_models.id', ondelete='SET NULL'), nullable=True),
        sa.Column('evaluation_dir', sa.String(1000), nullable=True),
        sa.Column('activated_by', sa.String(64), nullable=True),
        sa.Column('activated_at', TS, nullable=True),
    )
    op.create_table(
        'bot_model_events',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('model_id', sa.Integer(), sa.ForeignKey('bot_models.id', ondelete='CASCADE'),
                  nullable=False, index=True),
        sa.Column('action', sa.String(32), nullable=False),
        sa.Column('by', sa.String(64), nullable=False),
        sa.Column('at', TS, nullable=False),
        sa.Column('detail', JSON, nullable=True),
    )
    op.create_table(
        'training_jobs',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('status', sa.String(16), nullable=False, index=True),
        sa.Column('phase', sa.String(32), nullable=False),
        sa.Column('progress', sa.Double(), nullable=False),
        sa.Column('started_by', sa.String(64), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('finished_at', TS, nullable=True),
        sa.Column('data_hash', sa.String(64), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('log_tail', sa.Text(), nullable=True),
        sa.Column('model_id', sa.Integer(), sa.ForeignKey('bot_models.id', ondelete='SET NULL'),
                  nullable=True),
    )


def downgrade() -> None:
    for name in ('training_jobs', 'bot_model_events', 'bot_models', 'training_data_changes',
                 'review_cursor', 'review_messages', 'review_items'):
        op.drop_table(name)
