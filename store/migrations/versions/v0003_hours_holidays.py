"""opening hours per weekday and the holiday calendar, edited on the admin's Hours page

Both used to be settings only (``HOTLINE_BUSINESS_OPENS``/``CLOSES``, ``HOTLINE_HOLIDAYS``): they stay the
defaults while ``opening_hours`` is empty.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 02:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        'opening_hours',
        sa.Column('weekday', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('opens', sa.Time(), nullable=True),
        sa.Column('closes', sa.Time(), nullable=True),
        sa.PrimaryKeyConstraint('weekday'),
    )
    op.create_table(
        'holidays',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('day'),
    )


def downgrade() -> None:
    op.drop_table('holidays')
    op.drop_table('opening_hours')
