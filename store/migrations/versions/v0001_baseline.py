"""baseline: the schema create_all made before migrations

Every table is created only when missing: a database made by ``create_all`` before migrations existed is
adopted by running this revision on it (it gains the tables its hotline was too old to have).

Revision ID: 0001
Revises:
Create Date: 2026-12-06 23:23:42.147030
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _missing(table: str) -> bool:
    return table not in sa.inspect(op.get_bind()).get_table_names()


def upgrade() -> None:
    if _missing('agent_profiles'):
        op.create_table('agent_profiles',
            sa.Column('agent_id', sa.String(length=64), nullable=False),
            sa.Column('name', sa.String(length=128), nullable=False),
            sa.Column('endpoint', sa.String(length=128), nullable=False),
            sa.Column('skills', sa.JSON(), nullable=False),
            sa.Column('languages', sa.JSON(), nullable=False),
            sa.Column('deactivated_by', sa.String(length=64), nullable=False),
            sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint('agent_id')
        )
    if _missing('audit_log'):
        op.create_table('audit_log',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('actor', sa.String(length=64), nullable=False),
            sa.Column('role', sa.String(length=16), nullable=False),
            sa.Column('action', sa.String(length=48), nullable=False),
            sa.Column('target', sa.String(length=128), nullable=False),
            sa.Column('detail', sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('audit_log', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
            batch_op.create_index(batch_op.f('ix_audit_log_actor'), ['actor'], unique=False)
            batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
    if _missing('call_dispositions'):
        op.create_table('call_dispositions',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('call_id', sa.String(length=64), nullable=False),
            sa.Column('agent_id', sa.String(length=64), nullable=False),
            sa.Column('code', sa.String(length=32), nullable=False),
            sa.Column('notes', sa.Text(), nullable=False),
            sa.Column('at', sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('call_dispositions', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_call_dispositions_agent_id'), ['agent_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_call_dispositions_call_id'), ['call_id'], unique=False)
    if _missing('call_records'):
        op.create_table('call_records',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('call_id', sa.String(length=64), nullable=False),
            sa.Column('channel', sa.String(length=16), nullable=False),
            sa.Column('direction', sa.String(length=16), nullable=False),
            sa.Column('caller_masked', sa.String(length=32), nullable=False),
            sa.Column('caller_key', sa.String(length=16), nullable=False),
            sa.Column('called', sa.String(length=32), nullable=False),
            sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
            sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
            sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
            sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
            sa.Column('ivr_path', sa.JSON(), nullable=False),
            sa.Column('intent', sa.String(length=16), nullable=False),
            sa.Column('verified', sa.Boolean(), nullable=False),
            sa.Column('queue', sa.String(length=32), nullable=False),
            sa.Column('wait_s', sa.Float(), nullable=True),
            sa.Column('predicted_wait_s', sa.Float(), nullable=True),
            sa.Column('agent_id', sa.String(length=64), nullable=False),
            sa.Column('talk_s', sa.Float(), nullable=True),
            sa.Column('outcome', sa.String(length=24), nullable=False),
            sa.Column('ivr_outcome', sa.String(length=24), nullable=False),
            sa.Column('end_status', sa.String(length=24), nullable=False),
            sa.Column('language', sa.String(length=16), nullable=False),
            sa.Column('menu_version', sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('call_id')
        )
        with op.batch_alter_table('call_records', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_call_records_caller_key'), ['caller_key'], unique=False)
            batch_op.create_index(batch_op.f('ix_call_records_started_at'), ['started_at'], unique=False)
    if _missing('demo_cards'):
        op.create_table('demo_cards',
            sa.Column('token', sa.String(length=32), nullable=False),
            sa.Column('number_hash', sa.String(length=64), nullable=False),
            sa.Column('pin_hash', sa.String(length=64), nullable=False),
            sa.Column('id_last6_hash', sa.String(length=64), nullable=False),
            sa.Column('last4', sa.String(length=4), nullable=False),
            sa.Column('balance', sa.Numeric(precision=14, scale=2), nullable=False),
            sa.Column('status', sa.String(length=16), nullable=False),
            sa.Column('freeze_reference', sa.String(length=32), nullable=True),
            sa.PrimaryKeyConstraint('token'),
            sa.UniqueConstraint('number_hash')
        )
    if _missing('do_not_call'):
        op.create_table('do_not_call',
            sa.Column('number_key', sa.String(length=16), nullable=False),
            sa.Column('number_masked', sa.String(length=32), nullable=False),
            sa.Column('source', sa.String(length=32), nullable=False),
            sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint('number_key')
        )
    if _missing('menu_drafts'):
        op.create_table('menu_drafts',
            sa.Column('menu', sa.String(length=64), nullable=False),
            sa.Column('source', sa.Text(), nullable=False),
            sa.Column('base_version', sa.Integer(), nullable=False),
            sa.Column('updated_by', sa.String(length=64), nullable=False),
            sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint('menu')
        )
    if _missing('menu_versions'):
        op.create_table('menu_versions',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('menu', sa.String(length=64), nullable=False),
            sa.Column('version', sa.Integer(), nullable=False),
            sa.Column('source', sa.Text(), nullable=False),
            sa.Column('published_by', sa.String(length=128), nullable=False),
            sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('menu', 'version')
        )
        with op.batch_alter_table('menu_versions', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_menu_versions_menu'), ['menu'], unique=False)
    if _missing('pin_failures'):
        op.create_table('pin_failures',
            sa.Column('card_key', sa.String(length=64), nullable=False),
            sa.Column('card_masked', sa.String(length=32), nullable=False),
            sa.Column('failures', sa.Integer(), nullable=False),
            sa.Column('since', sa.DateTime(timezone=True), nullable=False),
            sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
            sa.Column('last_channel', sa.String(length=16), nullable=False),
            sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True),
            sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint('card_key')
        )
        with op.batch_alter_table('pin_failures', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_pin_failures_locked_at'), ['locked_at'], unique=False)
    if _missing('recordings'):
        op.create_table('recordings',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('ref', sa.String(length=128), nullable=False),
            sa.Column('call_id', sa.String(length=64), nullable=False),
            sa.Column('work_order', sa.String(length=32), nullable=True),
            sa.Column('path', sa.String(length=512), nullable=False),
            sa.Column('duration_s', sa.Float(), nullable=False),
            sa.Column('sha256', sa.String(length=64), nullable=False),
            sa.Column('size_bytes', sa.Integer(), nullable=False),
            sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('ref')
        )
        with op.batch_alter_table('recordings', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_recordings_call_id'), ['call_id'], unique=False)
    if _missing('users'):
        op.create_table('users',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('name', sa.String(length=64), nullable=False),
            sa.Column('role', sa.String(length=16), nullable=False),
            sa.Column('password_hash', sa.String(length=256), nullable=False),
            sa.Column('agent_id', sa.String(length=64), nullable=True),
            sa.Column('active', sa.Boolean(), nullable=False),
            sa.Column('failed_logins', sa.Integer(), nullable=False),
            sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
            sa.Column('session_epoch', sa.Integer(), nullable=False),
            sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('name')
        )
    if _missing('work_orders'):
        op.create_table('work_orders',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('number', sa.String(length=32), nullable=False),
            sa.Column('call_id', sa.String(length=64), nullable=False),
            sa.Column('category', sa.String(length=32), nullable=False),
            sa.Column('caller_masked', sa.String(length=32), nullable=False),
            sa.Column('callback_number', sa.String(length=32), nullable=False),
            sa.Column('language', sa.String(length=16), nullable=False),
            sa.Column('channel', sa.String(length=16), nullable=False),
            sa.Column('recording_ref', sa.String(length=128), nullable=False),
            sa.Column('status', sa.String(length=16), nullable=False),
            sa.Column('priority', sa.Integer(), nullable=False),
            sa.Column('assignee', sa.String(length=64), nullable=True),
            sa.Column('resolution', sa.Text(), nullable=True),
            sa.Column('rating', sa.Integer(), nullable=True),
            sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('first_contact_due', sa.DateTime(timezone=True), nullable=True),
            sa.Column('resolve_due', sa.DateTime(timezone=True), nullable=True),
            sa.Column('first_contact_at', sa.DateTime(timezone=True), nullable=True),
            sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
            sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
            sa.Column('overdue', sa.String(length=32), nullable=True),
            sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('call_id'),
            sa.UniqueConstraint('number')
        )
        with op.batch_alter_table('work_orders', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_work_orders_category'), ['category'], unique=False)
            batch_op.create_index(batch_op.f('ix_work_orders_created_at'), ['created_at'], unique=False)
            batch_op.create_index(batch_op.f('ix_work_orders_status'), ['status'], unique=False)
    if _missing('demo_card_freezes'):
        op.create_table('demo_card_freezes',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('token', sa.String(length=32), nullable=False),
            sa.Column('reference', sa.String(length=32), nullable=False),
            sa.Column('frozen_at', sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(['token'], ['demo_cards.token'], ),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('reference')
        )
    if _missing('return_visits'):
        op.create_table('return_visits',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('work_order_id', sa.Integer(), nullable=False),
            sa.Column('number', sa.String(length=32), nullable=False),
            sa.Column('number_key', sa.String(length=16), nullable=False),
            sa.Column('channel', sa.String(length=16), nullable=False),
            sa.Column('language', sa.String(length=16), nullable=False),
            sa.Column('status', sa.String(length=16), nullable=False),
            sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('attempts', sa.Integer(), nullable=False),
            sa.Column('rating', sa.Integer(), nullable=True),
            sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('return_visits', schema=None) as batch_op:
            batch_op.create_index('ix_return_visits_number_key', ['number_key'], unique=False)
            batch_op.create_index(batch_op.f('ix_return_visits_status'), ['status'], unique=False)
            batch_op.create_index(batch_op.f('ix_return_visits_work_order_id'), ['work_order_id'], unique=False)
    if _missing('work_order_changes'):
        op.create_table('work_order_changes',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('work_order_id', sa.Integer(), nullable=False),
            sa.Column('at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('actor', sa.String(length=64), nullable=False),
            sa.Column('action', sa.String(length=32), nullable=False),
            sa.Column('from_status', sa.String(length=16), nullable=True),
            sa.Column('to_status', sa.String(length=16), nullable=True),
            sa.Column('detail', sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('work_order_changes', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_work_order_changes_work_order_id'), ['work_order_id'], unique=False)
    if _missing('visit_attempts'):
        op.create_table('visit_attempts',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('visit_id', sa.Integer(), nullable=False),
            sa.Column('attempt', sa.Integer(), nullable=False),
            sa.Column('number_key', sa.String(length=16), nullable=False),
            sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('provider_call_id', sa.String(length=64), nullable=False),
            sa.Column('disposition', sa.String(length=16), nullable=False),
            sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(['visit_id'], ['return_visits.id'], ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('visit_id', 'attempt')
        )
        with op.batch_alter_table('visit_attempts', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_visit_attempts_number_key'), ['number_key'], unique=False)
            batch_op.create_index(batch_op.f('ix_visit_attempts_placed_at'), ['placed_at'], unique=False)
    if _missing('visit_call_tokens'):
        op.create_table('visit_call_tokens',
            sa.Column('token_hash', sa.String(length=64), nullable=False),
            sa.Column('visit_id', sa.Integer(), nullable=False),
            sa.Column('attempt', sa.Integer(), nullable=False),
            sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(['visit_id'], ['return_visits.id'], ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('token_hash')
        )
        with op.batch_alter_table('visit_call_tokens', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_visit_call_tokens_visit_id'), ['visit_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('visit_call_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_call_tokens_visit_id'))

    op.drop_table('visit_call_tokens')
    with op.batch_alter_table('visit_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_attempts_placed_at'))
        batch_op.drop_index(batch_op.f('ix_visit_attempts_number_key'))

    op.drop_table('visit_attempts')
    with op.batch_alter_table('work_order_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_order_changes_work_order_id'))

    op.drop_table('work_order_changes')
    with op.batch_alter_table('return_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_visits_work_order_id'))
        batch_op.drop_index(batch_op.f('ix_return_visits_status'))
        batch_op.drop_index('ix_return_visits_number_key')

    op.drop_table('return_visits')
    op.drop_table('demo_card_freezes')
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_orders_status'))
        batch_op.drop_index(batch_op.f('ix_work_orders_created_at'))
        batch_op.drop_index(batch_op.f('ix_work_orders_category'))

    op.drop_table('work_orders')
    op.drop_table('users')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recordings_call_id'))

    op.drop_table('recordings')
    with op.batch_alter_table('pin_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pin_failures_locked_at'))

    op.drop_table('pin_failures')
    with op.batch_alter_table('menu_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_menu_versions_menu'))

    op.drop_table('menu_versions')
    op.drop_table('menu_drafts')
    op.drop_table('do_not_call')
    op.drop_table('demo_cards')
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_records_started_at'))
        batch_op.drop_index(batch_op.f('ix_call_records_caller_key'))

    op.drop_table('call_records')
    with op.batch_alter_table('call_dispositions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_dispositions_call_id'))
        batch_op.drop_index(batch_op.f('ix_call_dispositions_agent_id'))

    op.drop_table('call_dispositions')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))
        batch_op.drop_index(batch_op.f('ix_audit_log_actor'))
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))

    op.drop_table('audit_log')
    op.drop_table('agent_profiles')
