"""index the visits finished in a period and the tokens by age

The reports count return visits by ``finished_at`` over a period (``reports.queries``), and the sweep deletes
visit-call tokens by ``created_at`` every few minutes (``complaints.return_visits``): without these indexes
both read the whole table, which grows by every resolved complaint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 23:24:22.527219
"""

from __future__ import annotations

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table('return_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_return_visits_finished_at'), ['finished_at'], unique=False)

    with op.batch_alter_table('visit_call_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_call_tokens_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('visit_call_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_call_tokens_created_at'))

    with op.batch_alter_table('return_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_visits_finished_at'))
