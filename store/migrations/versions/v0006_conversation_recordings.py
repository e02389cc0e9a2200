"""agent conversations recorded beside complaint messages

``recordings`` gains what a conversation recording has and a complaint message has not: its ``kind``
(``complaint`` for every existing row), the agent and the recorded leg, and the pauses the agent made
(offsets into the audio, shown as gaps by the player).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 05:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='complaint'))
        batch_op.add_column(sa.Column('agent_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('leg', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pauses', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_recordings_kind'), ['kind'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recordings_kind'))
        batch_op.drop_column('pauses')
        batch_op.drop_column('leg')
        batch_op.drop_column('agent_id')
        batch_op.drop_column('kind')
