"""fan message ids: the id a fan's message came with is unique per conversation (per fan
identity), not per channel, so one client's id "1" no longer drops another fan's message

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both backends, as in 0005. The old unique constraint on (channel,
# channel_message_id) is part of SQLite's CREATE TABLE and cannot be dropped without recreating
# messages (which deletes the rows that reference it), so fans' ids move to their own column
# with a per-conversation unique index; channel_message_id keeps the ids Meta gave our sends.


def upgrade() -> None:
    op.add_column('messages', sa.Column('fan_message_id', sa.String(255), nullable=True))
    op.execute("UPDATE messages SET fan_message_id = channel_message_id, "
               "channel_message_id = NULL WHERE kind = 'incoming'")
    op.create_index('uq_messages_conversation_id_fan_message_id', 'messages',
                    ['conversation_id', 'fan_message_id'], unique=True)


def downgrade() -> None:
    # Fails when two fans' messages share an id on one channel (what 0008 allowed).
    op.drop_index('uq_messages_conversation_id_fan_message_id', table_name='messages')
    op.execute("UPDATE messages SET channel_message_id = fan_message_id WHERE kind = 'incoming'")
    op.drop_column('messages', 'fan_message_id')
