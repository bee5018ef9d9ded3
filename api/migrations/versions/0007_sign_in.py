"""sign-in: revocable bearer tokens (a per-person token version) and lock-out counted per
handle and client address

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


# Plain ALTER TABLE on both backends, as in 0005 and 0006. The old per-handle lock-out table
# holds only short-lived counters: it is replaced, not converted.


def upgrade() -> None:
    op.add_column('staff', sa.Column('token_version', sa.Integer(), nullable=False,
                                     server_default='0'))
    op.drop_table('login_throttle')
    op.create_table(
        'login_attempts',
        sa.Column('handle', sa.String(64), nullable=False),
        sa.Column('address', sa.String(64), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('window_started_at', TS, nullable=False),
        sa.Column('locked_until', TS, nullable=True),
        sa.PrimaryKeyConstraint('handle', 'address', name='pk_login_attempts'),
    )


def downgrade() -> None:
    op.drop_table('login_attempts')
    op.create_table(
        'login_throttle',
        sa.Column('handle', sa.String(64), primary_key=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('locked_until', TS, nullable=True),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.drop_column('staff', 'token_version')
