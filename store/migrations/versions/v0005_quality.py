"""quality: evaluation forms (versioned), the reviewers' queue, evaluations; an index for the scorecards

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 05:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # the scorecards' calls handled, AHT and CSAT per agent or queue: read from the index alone
    op.create_index('ix_call_records_handled', 'call_records',
                    ['started_at', 'agent_id', 'queue', 'answered_at', 'talk_s', 'call_id'], unique=False)
    op.create_table(
        'evaluation_forms',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('definition', sa.JSON(), nullable=False),
        sa.Column('published_by', sa.String(length=64), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', 'version'),
    )
    op.create_index(op.f('ix_evaluation_forms_name'), 'evaluation_forms', ['name'], unique=False)
    op.create_table(
        'review_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('agent_id', sa.String(length=64), nullable=False),
        sa.Column('queue', sa.String(length=32), nullable=False),
        sa.Column('call_started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('week', sa.String(length=8), nullable=False),
        sa.Column('reasons', sa.JSON(), nullable=False),
        sa.Column('reviewer', sa.String(length=64), nullable=False),
        sa.Column('calibration', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('call_id', 'reviewer'),
    )
    op.create_index(op.f('ix_review_items_call_id'), 'review_items', ['call_id'], unique=False)
    op.create_index(op.f('ix_review_items_agent_id'), 'review_items', ['agent_id'], unique=False)
    op.create_index(op.f('ix_review_items_week'), 'review_items', ['week'], unique=False)
    op.create_index('ix_review_items_reviewer_status', 'review_items', ['reviewer', 'status'], unique=False)
    op.create_table(
        'evaluations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('agent_id', sa.String(length=64), nullable=False),
        sa.Column('queue', sa.String(length=32), nullable=False),
        sa.Column('call_started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reviewer', sa.String(length=64), nullable=False),
        sa.Column('calibration', sa.Boolean(), nullable=False),
        sa.Column('form', sa.String(length=64), nullable=False),
        sa.Column('form_version', sa.Integer(), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('comments', sa.JSON(), nullable=False),
        sa.Column('total', sa.Float(), nullable=True),
        sa.Column('auto_failed', sa.Boolean(), nullable=False),
        sa.Column('sections', sa.JSON(), nullable=False),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('agent_note', sa.Text(), nullable=False),
        sa.Column('agent_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['item_id'], ['review_items.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('item_id'),
    )
    op.create_index(op.f('ix_evaluations_call_id'), 'evaluations', ['call_id'], unique=False)
    op.create_index(op.f('ix_evaluations_reviewer'), 'evaluations', ['reviewer'], unique=False)
    op.create_index('ix_evaluations_agent_call', 'evaluations', ['agent_id', 'call_started_at'], unique=False)
    op.create_index('ix_evaluations_call_started', 'evaluations', ['call_started_at'], unique=False)


def downgrade() -> None:
    op.drop_table('evaluations')
    op.drop_table('review_items')
    op.drop_table('evaluation_forms')
    op.drop_index('ix_call_records_handled', table_name='call_records')
