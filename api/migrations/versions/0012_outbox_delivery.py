"""outbox delivery: one row per outgoing push message, leases, parts sent

Revision ID: 0012
Revises: 0011
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('conversation_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('parts_sent', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key('fk_outbox_conversation_id_conversations', 'conversations',
                                 ['conversation_id'], ['id'], ondelete='CASCADE')
        batch.create_index('ix_outbox_conversation_status', ['conversation_id', 'status'])
    op.execute("UPDATE outbox SET conversation_id = (SELECT m.conversation_id FROM messages m "
               "WHERE m.id = outbox.message_id)")
    # Replies stored before the outbox owned delivery and never sent get their row now.
    op.execute(
        "INSERT INTO outbox (message_id, conversation_id, channel, recipient, body, status, "
        "attempts, parts_sent, created_at) "
        "SELECT m.id, m.conversation_id, m.channel, i.external_id, '{}', 'pending', 0, 0, "
        "m.created_at FROM messages m "
        "JOIN conversations c ON c.id = m.conversation_id "
        "JOIN channel_identities i ON i.id = c.identity_id "
        "WHERE m.kind = 'outgoing' AND m.delivery_status = 'pending' "
        "AND m.channel IN ('messenger', 'webchat') "
        "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_index('ix_outbox_conversation_status')
        batch.drop_constraint('fk_outbox_conversation_id_conversations', type_='foreignkey')
        batch.drop_column('lease_until')
        batch.drop_column('parts_sent')
        batch.drop_column('conversation_id')
