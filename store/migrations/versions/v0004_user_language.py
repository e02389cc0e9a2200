"""the pages' language each user chose

The admin and agent pages speak zh-CN or en-US; a person's choice is kept with their account (``users.language``)
so it follows them to any browser. Empty for everyone at first: they see the installation's default
(``HOTLINE_UI_LANGUAGE``) until they choose.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 02:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('language')
