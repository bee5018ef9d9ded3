"""cluster: replicas' heartbeats and leases; who runs a bot turn and a training job

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'cluster_replicas',
        sa.Column('id', sa.String(128), nullable=False),
        sa.Column('started_at', TS, nullable=False),
        sa.Column('seen_at', TS, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_cluster_replicas')),
    )
    op.create_table(
        'cluster_leases',
        sa.Column('name', sa.String(64), nullable=False),
        sa.Column('holder', sa.String(128), nullable=True),
        sa.Column('since', TS, nullable=True),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_cluster_leases')),
    )
    # Plain ALTER TABLE on both backends (nullable columns), as in 0005 and 0008.
    op.add_column('messages', sa.Column('relay_claimed_by', sa.String(128), nullable=True))
    op.add_column('training_jobs', sa.Column('replica_id', sa.String(128), nullable=True))


def downgrade() -> None:
    op.drop_column('training_jobs', 'replica_id')
    op.drop_column('messages', 'relay_claimed_by')
    op.drop_table('cluster_leases')
    op.drop_table('cluster_replicas')
